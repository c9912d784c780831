"""The harness that tests, benchmarks and scripts share: Chromium and its driver, starting the app, process and
server traces, hostile inputs, training through the CLI, benchmark result lines. Never imported by the product.
"""
