"""The app's screens, one per A1111 tab (plus the help overlay). No torch imports here."""
