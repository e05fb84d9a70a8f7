"""Checkpoints: barriers' consistent snapshots of a job's state, source positions and sink
commits, recorded in the state directory and restored after a crash or on request.
"""
