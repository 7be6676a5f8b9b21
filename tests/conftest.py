pytest_plugins = ["tests.support.fixtures"]


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs the real Kafka broker / Prometheus / Alertmanager")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "e2e: end-to-end through the whole stack")
