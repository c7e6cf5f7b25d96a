"""The trusted runner inside the sandbox: two confined processes, and a verdict only it can send.

Not imported by loralab: the supervisor (:mod:`.sandbox`) concatenates :mod:`.sandbox_confine`,
:mod:`.sandbox_guard` and this file into ``runner.py`` in the sandbox folder and starts
``python -I runner.py VERDICT_FD MODE ENTRY_POINT``. The runner never executes untrusted code.
It forks:

* the **solution** process (mode ``check`` only): executes ``solution.py`` (the model's code),
  then answers calls of ``ENTRY_POINT``: arguments arrive pickled, the result leaves as plain
  data (:func:`_encode`: numbers, strings, bytes, lists, tuples, dicts, sets, None), never objects;
* the **tests** process: executes ``context.py`` (the problem's own prompt: imports, helpers) and
  ``test.py``, then ``check(candidate)``, where ``candidate`` sends each call to the solution
  process and rebuilds its result from the data (:func:`_decode`). The model's code never runs in
  this process, so it cannot make a test pass by exiting early, by returning an object that
  equals everything, or by reading a secret;
* (mode ``script``: the tests process executes ``test.py`` alone, a self-judging script.)

Both children close the verdict descriptor and are confined (:func:`confine`, then the guard)
before running anything untrusted. The runner waits for the tests process, ends the solution
process, and writes the verdict as one JSON line to VERDICT_FD, which no child holds.
"""

ENCODE_DEPTH, MESSAGE_LIMIT = 200, 64 * 2**20
CONFINE_FAILED = 97


def _send(descriptor, payload):
    import os

    data = len(payload).to_bytes(8, "little") + payload
    while data:
        data = data[os.write(descriptor, data) :]


def _receive(descriptor):
    import os

    def exactly(count):
        chunks, left = [], count
        while left:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    size = int.from_bytes(exactly(8), "little")
    if size > MESSAGE_LIMIT:
        raise ValueError(f"a message of {size} bytes exceeds the sandbox's limit")
    return exactly(size)


def _encode(value, depth=0):
    """Plain, JSON-ready data for ``value``; TypeError for anything that is not data."""
    import numbers

    if depth > ENCODE_DEPTH:
        raise TypeError("the value is nested too deeply")
    if value is None or value is True or value is False:
        return value
    if isinstance(value, numbers.Integral):
        return ["i", str(int(value))]
    if isinstance(value, numbers.Real):
        return ["f", repr(float(value))]
    if isinstance(value, numbers.Complex):
        number = complex(value)
        return ["c", [repr(number.real), repr(number.imag)]]
    if isinstance(value, str):
        return ["s", str.__str__(value)]
    if isinstance(value, (bytes, bytearray)):
        return ["ba" if isinstance(value, bytearray) else "b", bytes(value).decode("latin-1")]
    if isinstance(value, dict):
        return ["d", [[_encode(k, depth + 1), _encode(v, depth + 1)] for k, v in dict.items(value)]]
    for kind, tag in ((list, "l"), (tuple, "t"), (frozenset, "F"), (set, "S")):
        if isinstance(value, kind):
            return [tag, [_encode(item, depth + 1) for item in kind.__iter__(value)]]
    raise TypeError(f"the solution returned a {type(value).__name__}, which cannot leave its process")


def _decode(data, depth=0):
    """The value that :func:`_encode` described; anything malformed is a ValueError."""
    if depth > ENCODE_DEPTH + 1:
        raise ValueError("nested too deeply")
    if data is None or data is True or data is False:
        return data
    if not (type(data) is list and len(data) == 2 and type(data[0]) is str):
        raise ValueError("malformed value")
    tag, body = data
    scalars = {"i": int, "f": float, "s": str, "b": lambda text: text.encode("latin-1"),
               "ba": lambda text: bytearray(text.encode("latin-1"))}  # fmt: skip
    if tag in scalars and type(body) is str:
        return scalars[tag](body)
    if tag == "c" and type(body) is list and len(body) == 2:
        return complex(float(body[0]), float(body[1]))
    if type(body) is not list:
        raise ValueError("malformed value")
    if tag == "d":
        return {_decode(k, depth + 1): _decode(v, depth + 1) for k, v in body}
    kinds = {"l": list, "t": tuple, "S": set, "F": frozenset}
    if tag in kinds:
        return kinds[tag](_decode(item, depth + 1) for item in body)
    raise ValueError(f"unknown value tag {tag!r}")


def _serve(solution, requests, replies, entry_point):
    """The solution process: run the solution's source, then answer calls until the tests hang up."""
    import json
    import pickle

    namespace = {"__name__": "__main__"}
    load_error = None
    try:
        exec(compile(solution, "solution.py", "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - the model's code may raise anything, SystemExit included
        load_error = error
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        try:
            if load_error is not None:
                raise RuntimeError(f"the solution failed to run: {type(load_error).__name__}: {load_error}")
            function = namespace.get(entry_point)
            if not callable(function):
                raise NameError(f"the solution defines no function {entry_point!r}")
            args, kwargs = pickle.loads(request)
            result = function(*args, **kwargs)
            after = [_encode(a) if isinstance(a, (list, dict, set, bytearray)) else None for a in args]
            reply = ["ok", _encode(result), after]
        except BaseException as error:  # noqa: BLE001
            kind = type(error)
            reply = ["raised", kind.__module__, kind.__name__, str(error)[:500]]
        _send(replies, json.dumps(reply).encode())


class _Candidate:
    """The entry point as the tests see it: each call runs in the solution process."""

    def __init__(self, requests, replies, name):
        self._requests, self._replies, self.__name__ = requests, replies, name

    def __call__(self, *args, **kwargs):
        import builtins
        import json
        import pickle

        try:
            payload = pickle.dumps((args, kwargs))
        except Exception as error:
            raise TypeError(f"cannot send these arguments to the solution: {error}") from None
        _send(self._requests, payload)
        try:
            reply = json.loads(_receive(self._replies))
        except EOFError:
            raise RuntimeError("the solution process ended during a call (it exited or was killed)") from None
        if type(reply) is list and reply and reply[0] == "raised" and len(reply) == 4:
            _, module, name, message = (str(part) for part in reply)
            kind = getattr(builtins, name, None) if module == "builtins" else None
            if isinstance(kind, type) and issubclass(kind, Exception):
                raise kind(message)
            raise RuntimeError(f"the solution raised {name}: {message}")
        if not (type(reply) is list and len(reply) == 3 and reply[0] == "ok" and type(reply[2]) is list):
            raise RuntimeError("the solution process sent a malformed reply")
        for argument, data in zip(args, reply[2]):  # in-place changes to mutable arguments
            if data is None:
                continue
            value = _decode(data)
            if type(argument) is list and type(value) is list:
                argument[:] = value
            elif type(argument) in (dict, set) and type(value) is type(argument):
                argument.clear()
                argument.update(value)
            elif type(argument) is bytearray and type(value) is bytearray:
                argument[:] = value
        return _decode(reply[1])


def _run_tests(mode, context, test, requests, replies, entry_point):
    """The tests process: the context, the tests, then check(candidate); any exception fails it."""
    namespace = {"__name__": "__main__"}
    if mode == "check":
        try:
            code = compile(context, "context.py", "exec")
        except SyntaxError:  # a prompt that stops at a signature: give the function a body
            code = compile(context + "\n    pass\n", "context.py", "exec")
        exec(code, namespace)
    exec(compile(test, "test.py", "exec"), namespace)
    if mode == "check":
        candidate = _Candidate(requests, replies, entry_point)
        namespace[entry_point] = candidate
        namespace["check"](candidate)


def _child(role, verdict, keep, body):
    """Fork a child that closes every descriptor it should not hold, confines itself, runs ``body``."""
    import os
    import sys
    import traceback

    pid = os.fork()
    if pid:
        return pid
    leave, code = os._exit, 0  # the guard replaces os._exit
    try:
        os.close(verdict)
        for descriptor in range(3, 1024):
            if descriptor not in keep:
                try:
                    os.close(descriptor)
                except OSError:
                    pass
        for number, name in ((1, f"{role}.out"), (2, f"{role}.err")):
            handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(handle, number)
            os.close(handle)
        try:
            confine(os.getcwd())
            install(os.getcwd())
        except BaseException as error:  # noqa: BLE001
            sys.stderr.write(f"the sandbox could not confine the {role} process: {error}\n")
            sys.stderr.flush()
            leave(CONFINE_FAILED)
        try:
            body()
        except SystemExit as stop:
            sys.stderr.write(f"SystemExit: the program exited ({stop.code!r}) before its tests finished\n")
            code = 1
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            leave(code)


def _status(status):
    import os

    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit": os.WEXITSTATUS(status)}


def _main(argv):
    import json
    import os
    import signal

    verdict, mode, entry_point = int(argv[1]), argv[2], argv[3]
    sources = {}
    for name in ("solution", "test", "context"):  # read before any child exists: the solution may rewrite the files
        with open(f"{name}.py", encoding="utf-8", errors="surrogatepass") as handle:
            sources[name] = handle.read()
    layers = available_layers()
    if os.uname().sysname == "Linux":  # the runner's memory and descriptors stay out of the children's reach
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    requests_read, requests_write = os.pipe()
    replies_read, replies_write = os.pipe()
    solution = None
    if mode == "check":
        solution = _child("solution", verdict, {requests_read, replies_write},
                          lambda: _serve(sources["solution"], requests_read, replies_write, entry_point))  # fmt: skip
    tests = _child("test", verdict, {requests_write, replies_read},
                   lambda: _run_tests(mode, sources["context"], sources["test"], requests_write, replies_read, entry_point))  # fmt: skip
    for descriptor in (requests_read, requests_write, replies_read, replies_write):
        os.close(descriptor)
    report = {"layers": layers, "test": _status(os.waitpid(tests, 0)[1])}
    if solution is not None:
        try:
            os.kill(solution, signal.SIGKILL)
        except ProcessLookupError:
            pass
        report["solution"] = _status(os.waitpid(solution, 0)[1])
    _send(verdict, json.dumps(report).encode())
    os.close(verdict)


if __name__ == "__main__":
    import sys

    _main(sys.argv)
