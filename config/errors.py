"""Start-up configuration errors: one clear line, exit status 2."""


class ConfigError(Exception):
    """A setting is missing or wrong. The message names the setting and the problem."""

    def __init__(self, setting: str, problem: str):
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")
