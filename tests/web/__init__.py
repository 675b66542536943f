"""Browser tests of the web page served at /."""
