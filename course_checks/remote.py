"""The judge's view of the learner's objects while a notebook is graded: :class:`Remote` handles.

In the notebook a check receives the learner's function, class or model itself. When grading, the same
check runs in the judge (the grader's process, where no learner code runs) and receives a
:class:`Remote` instead: calling it, reading an attribute or asking ``isinstance`` sends one request to the
probe agent in the learner's kernel (:mod:`course_checks.probe`) and decodes the plain-data answer. Arrays
come back as NumPy arrays, Keras layers and models made of Keras's own classes as rebuilt copies (the
judge computes with those itself), and everything else as further handles. An error raised by the
learner's code is raised here under its own class name, so a check's message reads as in the notebook.

The checks use :func:`type_name`, :func:`type_of`, :func:`missing_attributes` and :func:`build_eagerly`
of this module where they would otherwise look at an object's Python type, which a handle cannot share.
"""

import json

from course_checks import probe

MAX_ANSWER_BYTES = 512 * 2**20
"""The largest answer the judge reads (a ResNet50 with its weights is about 130 MB)."""

_BUILTIN_ERRORS = {cls.__name__: cls for cls in (
    NotImplementedError, ValueError, TypeError, AttributeError, KeyError, IndexError, NameError, RuntimeError,
    ZeroDivisionError, ArithmeticError, OverflowError, MemoryError, RecursionError, AssertionError, LookupError,
    UnboundLocalError, ImportError, ModuleNotFoundError, StopIteration, OSError)}


class ProbeFailed(RuntimeError):
    """The kernel answered nothing usable (it died, timed out, or sent data outside the wire format)."""


class LearnerError(Exception):
    """An error raised by the learner's code in the kernel; subclasses carry its class name."""


UNCHANGED = object()
"""The agent's answer to a ``getattr`` naming the fingerprint of the copy the judge holds: still the same."""


def _learner_error(name, message, builtin):
    if builtin and name in _BUILTIN_ERRORS:
        return _BUILTIN_ERRORS[name](message)
    name = name if probe.IDENTIFIER.match(str(name)) else "Error"
    return type(name, (LearnerError,), {})(message)


class Link:
    """The judge's end of the channel: ``send(request: str) -> answer: str`` (the grader provides it)."""

    def __init__(self, send):
        self._send = send
        self.copies = {}  # (handle id, attribute) -> a copy read since the last request that could change it
        self.earlier = {}  # the same, read before that request: reused only if the kernel says unchanged

    def ask(self, request):
        if request["op"] not in ("getattr", "missing", "bind", "type"):
            # a call may change the learner's objects: read them afresh (a copy may be confirmed unchanged)
            self.earlier.update((key, copy) for key, copy in self.copies.items() if not is_remote(copy))
            self.copies.clear()
        answer = self._send(json.dumps(request, allow_nan=False))
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_BYTES:
            raise ProbeFailed("the kernel's answer is missing or too large")
        try:
            reply = json.loads(answer)
        except ValueError as error:
            raise ProbeFailed(f"the kernel's answer is not JSON: {error}") from None
        if not isinstance(reply, dict):
            raise ProbeFailed("the kernel's answer is not an object")
        if "error" in reply:
            raise _learner_error(reply["error"], str(reply.get("message", ""))[: probe.MAX_MESSAGE],
                                 bool(reply.get("builtin")))
        if "wire_error" in reply:
            raise ProbeFailed(f"the kernel could not answer: {str(reply['wire_error'])[:200]}")
        if request.get("known") is not None and reply.get("value") == {"unchanged": request["known"]}:
            return UNCHANGED
        try:
            return probe.decode(reply.get("value"), self.resolve)
        except probe.WireError as error:
            raise ProbeFailed(f"the kernel sent data outside the wire format: {error}") from None
        except Exception as error:  # noqa: BLE001 (a Keras config that does not rebuild, a bad array)
            raise ProbeFailed(f"the kernel sent an object that cannot be rebuilt here: "
                              f"{type(error).__name__}: {str(error)[:200]}") from None

    def resolve(self, node):
        bases = [b for b in node.get("bases", []) if b in probe.BASE_CLASSES]
        return Remote(self, int(node["remote"]), str(node.get("type", "object"))[:100], tuple(bases))

    def bind(self, name):
        """The kernel's value of ``name``: a module's name as ``("module", name)``, or the decoded value."""
        value = self.ask({"op": "bind", "name": name})
        return value


def _wire_arguments(link, args, kwargs):
    def keep(obj):
        if isinstance(obj, Remote) and obj._link is link:
            return obj._id
        raise probe.WireError(f"a {type(obj).__name__} cannot be sent to the kernel")

    def with_handles(value):
        if isinstance(value, Remote):
            return {"remote": keep(value), "type": value._type}
        return probe.encode(value)

    def tree(value):
        if isinstance(value, Remote):
            return with_handles(value)
        if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
            return {type(value).__name__ if type(value) in (list, tuple) else "list": [tree(v) for v in value]}
        if isinstance(value, dict):
            return {"dict": [[k, tree(v)] for k, v in value.items()]}
        return probe.encode(value)

    return tree(list(args)), tree(dict(kwargs))


class Remote:
    """A handle to an object in the learner's kernel (see the module docstring)."""

    __slots__ = ("_link", "_id", "_type", "_bases")

    def __init__(self, link, key, type_name, bases=()):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_id", key)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_bases", bases)

    @property
    def __class__(self):
        """The Keras base class the object has (``isinstance(handle, keras.Model)`` then holds), else Remote."""
        for base in self._bases:
            import keras  # noqa: PLC0415 (only for the learner's Keras objects)
            return {"keras.Model": keras.Model, "keras.layers.Layer": keras.layers.Layer}[base]
        return Remote

    def __call__(self, *args, **kwargs):
        wire_args, wire_kwargs = _wire_arguments(self._link, args, kwargs)
        return self._link.ask({"op": "call", "id": self._id, "args": wire_args, "kwargs": wire_kwargs})

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        key, link = (self._id, name), self._link
        if key in link.copies:
            return link.copies[key]
        request = {"op": "getattr", "id": self._id, "name": name}
        earlier = link.earlier.pop(key, None)
        known = probe.sent_fingerprint(earlier) if earlier is not None else None
        if known is not None:
            request["known"] = known
        value = link.ask(request)
        if value is UNCHANGED:
            value = earlier
        if is_remote(value) or hasattr(value, "get_config"):  # a handle, or a rebuilt Keras copy: kept
            link.copies[key] = value
        return value

    def __setattr__(self, name, value):
        raise AttributeError("a handle to the learner's object is read-only")

    def __repr__(self):
        return f"<the learner's {self._type}>"

    def __bool__(self):
        return True

    def method(self, name, *args, **kwargs):
        wire_args, wire_kwargs = _wire_arguments(self._link, args, kwargs)
        return self._link.ask({"op": "call_method", "id": self._id, "name": name, "args": wire_args,
                               "kwargs": wire_kwargs})


def is_remote(value):
    return type(value) is Remote


def type_name(value):
    """The name of ``value``'s class, for messages; a handle's is its object's class name in the kernel."""
    return object.__getattribute__(value, "_type") if is_remote(value) else type(value).__name__


def type_of(value):
    """``type(value)``, or a handle to the class of the learner's object."""
    if is_remote(value):
        link, key = object.__getattribute__(value, "_link"), object.__getattribute__(value, "_id")
        return link.ask({"op": "type", "id": key})
    return type(value)


def missing_attributes(value, names):
    """The names in ``names`` that ``value`` has no attribute of (for a handle: one request)."""
    if is_remote(value):
        link, key = object.__getattribute__(value, "_link"), object.__getattribute__(value, "_id")
        missing = link.ask({"op": "missing", "id": key, "names": list(names)})
        return [name for name in names if name in missing] if isinstance(missing, list) else list(names)
    return [name for name in names if not hasattr(value, name)]


def beside(function, target, *args):
    """``function(target, *args)`` where ``target`` lives: here, or in the kernel for a handle (``function``
    must be one of :data:`course_checks.probe.PROBES`)."""
    if not is_remote(target):
        return function(target, *args)
    link, key = object.__getattribute__(target, "_link"), object.__getattribute__(target, "_id")
    wire_args, _ = _wire_arguments(link, args, {})
    return link.ask({"op": "probe", "function": function.__name__, "id": key, "args": wire_args})


def build_eagerly(layer, input_shape):
    """:func:`course_checks.probe.build_eagerly`, run where the layer lives."""
    beside(probe.build_eagerly, layer, tuple(input_shape))
