"""The half of a check that runs beside the learner's objects: the probe agent and its wire format.

When a notebook is graded, the ``TEST_*`` checks do not run in the learner's kernel (see
:mod:`course_checks.remote` and ``docs/design.md``, *Verdicts*). They run in the grader's process, the
*judge*, where no learner code has ever run. What must happen beside the learner's objects (calling
their function, class or layer on inputs the judge chose, reading an attribute, asking what a thing is)
is done by this module's :class:`Agent`, loaded privately into the kernel before the first learner cell.
Each request and each answer is *plain data* in the format below; nothing else crosses.

The wire format (:func:`encode` / :func:`decode`), a JSON tree of:

* ``None``, booleans, integers, floats (``{"float": "nan"}`` for non-finite ones), strings;
* ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (string keys),
  ``{"namedtuple": type name, "fields": [...], "values": [...]}``;
* ``{"array": base64 of an .npy file}`` for NumPy arrays and tensors (numbers and booleans only, read
  with ``allow_pickle=False``);
* ``{"keras": serialized config, "weights": [...], "fingerprint": sha256}`` for a layer or model built
  only from Keras's own classes (a copy the receiver rebuilds with ``safe_mode=True``: no lambdas, no
  custom code); ``{"unchanged": sha256}`` instead when the judge asked for an object it holds a copy of
  with that fingerprint, and the object still has it;
* ``{"symbolic": shape, "dtype": ..., "producer": layer name}`` for a symbolic Keras tensor;
* ``{"remote": id, "type": name, "bases": [...]}`` for anything else: a handle to an object that stays in
  the kernel (the learner's classes and instances), which later requests name by its id.

Errors raised by learner code travel as ``{"error": type name, "message": first 2,000 characters}``.

This module imports neither the reference package nor the rest of ``course_checks``: the kernel needs
nothing of the judge to answer. The judge validates every answer (sizes, types, module names in Keras
configs) before it uses it, because the kernel may send anything.
"""

import base64
import hashlib
import io
import json
import re
import weakref

import numpy as np

MAX_MESSAGE = 2000
MAX_COPY_BYTES = 32 * 2**20
"""A Keras object with more weights than this stays in the kernel as a handle (ResNet50's 94 MB would
cost seconds per crossing); the checks call it there instead of copying it."""
REUSE_BYTES = 2 * 2**20
"""A copy with at least this many bytes of weights carries a fingerprint, so the judge can ask whether the
learner's object is unchanged instead of having it sent again (below, sending is cheaper than hashing)."""
KERAS_MODULES = re.compile(r"^keras(\.(layers|initializers|regularizers|constraints|activations|models|src\.models"
                           r"\.(functional|sequential|model)|src\.layers(\.[a-z_]+)*))?$")
"""Modules a Keras config may name: Keras's own layers, models and their settings, nothing else."""
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
BASE_CLASSES = ("keras.Model", "keras.layers.Layer")
"""Keras classes a handle reports itself an instance of, for the judge's ``isinstance``."""


class WireError(ValueError):
    """Data that is not in the wire format, or a Keras config naming something outside Keras."""


def _keras():
    import keras  # noqa: PLC0415 (only when a Keras object crosses)
    return keras


def _loaded_keras():
    """Keras if this process imported it already, else None (then no value can be a Keras object, and a
    kernel that never used Keras is not made to import it: seconds, on a loaded machine past a cell limit)."""
    import sys  # noqa: PLC0415
    return sys.modules.get("keras")


def _is_keras_native(obj):
    """A layer or model whose class, and every sub-layer's class, is one of Keras's own."""
    keras = _loaded_keras()
    if keras is None or not isinstance(obj, keras.layers.Layer):
        return False
    layers = [obj] + list(getattr(obj, "_flatten_layers", lambda: [])())
    direct = list(getattr(obj, "layers", None) or []) if isinstance(obj, keras.Model) else []
    if len({id(layer) for layer in direct}) != len(direct):
        return False  # a Sequential holding one layer several times: its config names it once, so stays here
    return all(type(layer).__module__.startswith("keras.") for layer in layers)


def _weight_bytes(layer):
    return sum(int(np.prod(weight.shape)) * 4 for weight in layer.weights)


def _copyable(value):
    """A Keras object that crosses as a copy (config and weights) rather than as a handle."""
    return _is_keras_native(value) and _weight_bytes(value) <= MAX_COPY_BYTES


def _digest(config, weights):
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode())
    for weight in weights:
        weight = np.ascontiguousarray(weight)
        digest.update(f"{weight.dtype.str}{weight.shape}".encode())
        digest.update(weight.tobytes())
    return digest.hexdigest()


def fingerprint(layer):
    """A digest of a Keras object's config and weights. The judge keeps the copies it was sent; when it
    needs one again after a call that might have changed the learner's object, it sends the fingerprint
    and the agent answers ``{"unchanged": fingerprint}`` instead of the whole copy if it still matches (a
    RetinaNet's heads are 13 MB each on the wire)."""
    return _digest(_keras().saving.serialize_keras_object(layer), layer.get_weights())


def _array_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _array_from(text):
    array = np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    if array.dtype.kind not in "biuf":
        raise WireError(f"arrays of numbers only, found dtype {array.dtype}")
    return array


def _tensor_like(value):
    keras = _loaded_keras() if type(value).__module__.split(".")[0] in ("tensorflow", "keras", "jax", "jaxlib") else None
    if keras is not None:
        try:
            return np.asarray(keras.ops.convert_to_numpy(value))
        except Exception:  # noqa: BLE001 (a symbolic tensor, a variable of another kind)
            return None
    return None


def encode(value, keep=None, depth=0):
    """``value`` in the wire format; ``keep(obj) -> id`` registers objects sent as handles."""
    if depth > 20:
        raise WireError("nested more than 20 levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if np.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"array": _array_bytes(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"namedtuple": type(value).__name__, "fields": list(value._fields),
                "values": [encode(v, keep, depth + 1) for v in value]}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__ if type(value) in (list, tuple) else "list":
                [encode(v, keep, depth + 1) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": [[k, encode(v, keep, depth + 1)] for k, v in value.items()]}
    if type(value).__name__ == "KerasTensor":
        history = getattr(value, "_keras_history", None)
        producer = getattr(getattr(history, "operation", None), "name", None)
        return {"symbolic": list(value.shape), "dtype": str(value.dtype), "producer": producer}
    if _copyable(value):
        config, weights = _keras().saving.serialize_keras_object(value), value.get_weights()
        node = {"keras": config, "weights": [_array_bytes(np.asarray(w)) for w in weights]}
        if _weight_bytes(value) >= REUSE_BYTES:
            node["fingerprint"] = _digest(config, weights)
        return node
    if _loaded_keras() is not None and isinstance(value, _loaded_keras().initializers.Initializer):
        return {"keras": _keras().saving.serialize_keras_object(value), "weights": []}
    array = _tensor_like(value)
    if array is not None and array.dtype.kind in "biuf":
        return {"array": _array_bytes(array)}
    if keep is None:
        raise WireError(f"a {type(value).__name__} cannot be sent")
    return {"remote": keep(value), "type": type(value).__name__, "bases": _bases(value)}


def _bases(value):
    keras = _loaded_keras()
    if keras is None:
        return []
    return [name for name, cls in (("keras.Model", keras.Model), ("keras.layers.Layer", keras.layers.Layer))
            if isinstance(value, cls)]


MAX_CONFIG_INTEGER = 1_000_000
"""The largest integer a Keras config may hold (filters, units, sizes): a copy is built before its weights
are set, so a config declaring a billion filters would make the judge allocate them."""


def check_keras_config(config, depth=0):
    """Refuse a Keras config that names any module outside Keras's layers, models and their settings, or
    declares sizes no course model has."""
    if depth > 200:
        raise WireError("Keras config nested too deeply")
    if isinstance(config, int) and not isinstance(config, bool) and abs(config) > MAX_CONFIG_INTEGER:
        raise WireError(f"a Keras config declares the size {config}")
    if isinstance(config, dict):
        if "module" in config and config["module"] is not None:
            if not (isinstance(config["module"], str) and KERAS_MODULES.match(config["module"])):
                raise WireError(f"a Keras config names module {config['module']!r}")
            if not (isinstance(config.get("class_name"), str) and IDENTIFIER.match(config["class_name"])):
                raise WireError("a Keras config names no plain class")
        if config.get("registered_name") not in (None, config.get("class_name")):
            raise WireError(f"a Keras config names a registered object {config['registered_name']!r}")
        for key, value in config.items():
            if key != "seed":  # an initializer's seed may be any integer
                check_keras_config(value, depth + 1)
    elif isinstance(config, list):
        for value in config:
            check_keras_config(value, depth + 1)


def decode(data, resolve=None, depth=0):
    """The value ``data`` (wire format) stands for; ``resolve(node)`` turns a handle into an object."""
    if depth > 20:
        raise WireError("nested more than 20 levels")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        raise WireError("a bare list")
    if not isinstance(data, dict) or not data:
        raise WireError(f"not wire data: {type(data).__name__}")
    if "float" in data:
        return float(data["float"]) if data["float"] in ("nan", "inf", "-inf") else _raise("bad float")
    if "array" in data:
        return _array_from(data["array"])
    if "list" in data:
        return [decode(v, resolve, depth + 1) for v in data["list"]]
    if "tuple" in data:
        return tuple(decode(v, resolve, depth + 1) for v in data["tuple"])
    if "dict" in data:
        return {str(k): decode(v, resolve, depth + 1) for k, v in data["dict"]}
    if "namedtuple" in data:
        name = data["namedtuple"] if IDENTIFIER.match(str(data["namedtuple"])) else "Result"
        fields = [f for f in data["fields"] if isinstance(f, str) and IDENTIFIER.match(f) and not f.startswith("_")]
        if len(fields) != len(data["values"]) or len(set(fields)) != len(fields):
            raise WireError("a namedtuple's fields do not match its values")
        import collections  # noqa: PLC0415
        return collections.namedtuple(name, fields)(*(decode(v, resolve, depth + 1) for v in data["values"]))
    if "symbolic" in data:
        return SymbolicTensor(tuple(data["symbolic"]), str(data.get("dtype")), data.get("producer"))
    if "keras" in data:
        return _rebuild(data)
    if set(data) == {"module"} and isinstance(data["module"], str):
        return ModuleName(data["module"][:200])
    if "remote" in data:
        if resolve is None:
            raise WireError("a handle where none is allowed")
        return resolve(data)
    raise WireError(f"unknown wire node {sorted(data)[:3]}")


def _raise(message):
    raise WireError(message)


def _rebuild(data):
    """A Keras object from its config and weights, built only from Keras's own classes."""
    keras = _keras()
    check_keras_config(data["keras"])
    obj = keras.saving.deserialize_keras_object(data["keras"], safe_mode=True)
    weights = [_array_from(w) for w in data.get("weights", [])]
    if weights:
        obj.set_weights(weights)
    sent = data.get("fingerprint")
    if isinstance(sent, str) and FINGERPRINT.match(sent) and hasattr(obj, "get_weights"):
        _COPIES[obj] = (sent, fingerprint(obj))  # the kernel's digest, and this copy's as rebuilt
    return obj


_COPIES = weakref.WeakKeyDictionary()


def sent_fingerprint(copy):
    """The kernel's fingerprint of the object ``copy`` was rebuilt from, while ``copy`` is still as
    rebuilt (the judge may have changed it: then None, and the judge asks for a fresh copy)."""
    sent, rebuilt = _COPIES.get(copy, (None, None))
    return sent if sent is not None and fingerprint(copy) == rebuilt else None


class ModuleName(str):
    """The name of a module the learner's name is bound to (the judge binds its own module instead)."""


class SymbolicTensor:
    """What the judge knows of a symbolic Keras tensor of the learner's: its shape, dtype and producer."""

    def __init__(self, shape, dtype, producer):
        self.shape, self.dtype, self.producer = shape, dtype, producer

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}>"


def build_eagerly(layer, input_shape):
    """Mark a never-called layer built, so that its first call runs once, eagerly.

    Keras builds a subclassed layer whose sublayers are unbuilt by first tracing its ``call`` symbolically
    (1–2 s for ResNet50 on two cores), then runs it; the eager run builds every sublayer anyway, in the
    learner's own wiring. So the checks skip the trace, for layers without a ``build`` of their own.
    """
    keras = _keras()
    if not layer.built and type(layer).build is keras.layers.Layer.build:
        layer.build(input_shape)


def layer_holder(model, name):
    """``model``, or the model nested in it (at any depth), whose own layers include one named ``name``;
    None if there is none (a backbone wrapped behind a fresh ``keras.Input`` holds ResNet50 one level down)."""
    keras = _keras()
    candidates = [model] + [layer for layer in model._flatten_layers(include_self=False)
                            if isinstance(layer, keras.Model)]
    for candidate in candidates:
        if any(layer.name == name for layer in candidate.layers):
            return candidate
    return None


def resnet_outputs(model, batch, first_layer, names):
    """The outputs of ``model``'s layers ``names`` computed from ``batch`` fed straight into its layer
    ``first_layer``: the learner's own layers and weights, without whatever they put before or after (the
    layers may sit in a model nested in ``model``). None if ``model`` holds no such layers."""
    keras = _keras()
    holder = layer_holder(model, first_layer)
    if holder is None or any(layer_holder(holder, name) is not holder for name in names):
        return None
    first = holder.get_layer(first_layer)
    return keras.Model(first.input, [holder.get_layer(name).output for name in names])(batch, training=False)


def reads_resnet_directly(model, first_layer, names):
    """Whether functional ``model`` feeds its input straight into its layer ``first_layer`` and returns the
    outputs of its layers ``names`` themselves: then what it computes *is* what those layers compute from the
    images (:func:`resnet_outputs` would run the same graph again), by construction."""
    inputs, outputs = list(getattr(model, "inputs", None) or []), list(getattr(model, "outputs", None) or [])
    if len(inputs) != 1 or len(outputs) != len(names) or not any(l.name == first_layer for l in model.layers):
        return False
    layers = {layer.name: layer for layer in model.layers}
    if any(name not in layers for name in names) or layers[first_layer].input is not inputs[0]:
        return False
    return all(output is layers[name].output for output, name in zip(outputs, names))


def output_feeds_layer(model, index, layer_name):
    """Whether output ``index`` of functional ``model`` is the *input* of its layer ``layer_name``."""
    holder = layer_holder(model, layer_name)
    layer = None if holder is None else holder.get_layer(layer_name)
    return layer is not None and layer.input is model.outputs[index]


PROBES = {function.__name__: function for function in (resnet_outputs, reads_resnet_directly, output_feeds_layer,
                                                       build_eagerly)}
"""The checks' helpers that must run beside the learner's objects (by name, for :meth:`Agent.handle`)."""


class Agent:
    """The kernel side: a registry of the learner's objects the judge holds handles to, and the requests.

    Every request is one JSON string, every answer one JSON string (see the module docstring). The judge
    calls :meth:`handle` through the kernel's own protocol (a silent execute request whose
    ``user_expressions`` carry the answer back on the shell channel, never through the cells' outputs).
    """

    def __init__(self, namespace):
        """``namespace``: the learner's names (a dict), or a function returning them at each request."""
        self.namespace = namespace if callable(namespace) else (lambda: namespace)
        self.objects = {}
        self._keys = {}  # id(obj) -> its key: an object keeps one handle id, so the judge's copies of its
        # attributes stay addressable (every kept object stays referenced, so ids are not reused)

    def keep(self, obj):
        key = self._keys.get(id(obj))
        if key is None:
            key = self._keys[id(obj)] = len(self.objects) + 1
            self.objects[key] = obj
        return key

    def handle(self, request_text):
        try:
            request = json.loads(request_text)
            return json.dumps({"value": self._answer(request)}, allow_nan=False)
        except WireError as error:
            return json.dumps({"wire_error": str(error)[:MAX_MESSAGE]})
        except BaseException as error:  # noqa: BLE001 (the learner's code failed: report it as data)
            message = str(error)
            return json.dumps({"error": type(error).__name__, "message": message[:MAX_MESSAGE],
                               "builtin": type(error).__module__ == "builtins"})

    def _resolve(self, node):
        return self.objects[int(node["remote"])]

    def _answer(self, request):
        op = request["op"]
        if op == "bind":
            name, namespace = request["name"], self.namespace()
            if name not in namespace:
                raise NameError(f"name '{name}' is not defined")
            value = namespace[name]
            if type(value).__name__ == "module":
                return {"module": value.__name__}
            return encode(value, self.keep)
        target = self.objects[int(request["id"])]
        if op == "call":
            args = decode(request["args"], self._resolve)
            kwargs = decode(request["kwargs"], self._resolve)
            return encode(target(*args, **kwargs), self.keep)
        if op == "getattr":
            value = getattr(target, request["name"])
            known = request.get("known")
            if isinstance(known, str) and _copyable(value) and fingerprint(value) == known:
                return {"unchanged": known}
            return encode(value, self.keep)
        if op == "missing":
            return encode([name for name in request["names"] if not hasattr(target, name)])
        if op == "type":
            return encode(type(target), self.keep)
        if op == "probe":
            function = PROBES[request["function"]]
            return encode(function(target, *decode(request["args"], self._resolve)), self.keep)
        if op == "call_method":
            method = getattr(target, request["name"])
            args = decode(request["args"], self._resolve)
            kwargs = decode(request["kwargs"], self._resolve)
            return encode(method(*args, **kwargs), self.keep)
        raise WireError(f"unknown request {op!r}")
