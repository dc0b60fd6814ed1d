"""The one error of bad input: the command line prints `error: <file>: <what>` and exits with status 2."""


class InputError(Exception):
    def __init__(self, path, what):
        super().__init__(f"{path}: {what}")
