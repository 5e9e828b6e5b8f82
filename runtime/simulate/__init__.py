"""The desktop simulator: replay a workload through the shipped pipeline and predict device latency,
memory fit and money before anything reaches a phone."""
