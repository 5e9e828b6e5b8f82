"""Shadow mode: record what the router would have done while the app's current tier answers
(`slmkit serve --shadow TIER`), and report it (`slmkit shadow report`)."""
