"""The runtime: operators, the driver that moves batches and watermarks, metrics."""
