"""App templates (iOS SwiftPM package, Android Gradle module) rendered by `slmkit package`."""
