"""`slmkit package`: model + routing runtime + app template, verified, for iOS, Android or desktop."""
