"""HTTP routers: thin, they validate input, call one service and shape the output."""
