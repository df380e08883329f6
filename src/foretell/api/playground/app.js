// playground app
