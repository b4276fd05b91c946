"""ULTRA sidecar: Gymnasium + Stable-Baselines3 behind a ZeroMQ/msgpack protocol driven by the TS side."""
