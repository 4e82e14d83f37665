"""HTTP routes: parse, authorize, call one service function, shape the response."""
