"""Machine-made mutants of the reference solution, each given to its check as a learner's answer.

For every check the learner-written reference code (the *unit*: the function the exercise asks for and the
helpers of ``retinanet/`` that the notebook's answer writes inline) is parsed with :mod:`ast`, and each
mutation point gives one mutant: the unit with that one change, compiled into a fresh namespace (a copy of the
reference module's globals, so the checks' own reference stays intact) and passed to the check exactly as the
notebook passes the learner's answer. Operators: arithmetic swaps (+ −, * /, //, %, **), comparison swaps
(< ≤, > ≥, == ≠, is, in), constants (0 ↔ 1, n ± 1, x·1.1 and x·0.5, True ↔ False, a few strings such as
"same" ↔ "valid"), and ↔ or, a name swapped for its sibling (c3 → c4, conv_c3_1x1 → conv_c4_1x1,
centre_x → centre_y, boxes_a → boxes_b, height → width), removed unary minus / not / ~, slice bounds dropped, keyword arguments dropped,
the first two positional arguments of a call swapped (``where``: the two branches), function swaps
(maximum ↔ minimum, exp ↔ log, sum → mean, argmax ↔ argmin, logical_and ↔ or, ceil ↔ floor, …), functions
replaced by their argument (sigmoid, relu, abs, exp, log, cast, clip, …), a statement removed (an assignment
to a name that already has a value keeps the old value; an expression statement or ``+=`` vanishes),
``training=…`` forced to True, and the elements of a returned tuple swapped. Input validation (``if …: raise``)
is not mutated: the learners' answers do not validate, and every check calls with valid inputs.

Each mutant is classified as

* **killed**: the check raised ``AssertionError`` (its message; the first line is recorded);
* **survived**: the check passed, and the mutant computes something else on some valid input (a witness);
* **equivalent**: the check passed, and the mutant computes the same as the reference on every input of a
  wide random sample (``candidate``), or a hand-confirmed reason in :data:`EQUIVALENT` says why;
* **error**: the check crashed with another exception (a defect of the check);
* **timeout**: no answer within :data:`TIME_LIMIT_S` seconds;
* **stillborn** (counted as killed): the notebook cell that builds the answer raises before the check runs
  (``RetinaNet(...)`` only).

The score of a check is killed / (total − equivalent). Mutants run in worker processes (one TensorFlow
import each), fed one mutant at a time; a worker past the time limit is killed and replaced.

    .venv/bin/python benchmarks/mutation.py                      # every mutant → benchmarks/mutation.json
    .venv/bin/python benchmarks/mutation.py --sample 60 --seed 1 # a seeded sample (printed, not written)
    .venv/bin/python benchmarks/mutation.py --list               # the mutants, without running them
"""

import argparse
import ast
import builtins
import copy
import datetime
import hashlib
import importlib
import json
import math
import os
import pathlib
import platform
import random
import re
import select
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "mutation.json"
TIME_LIMIT_S = 90.0
"""Per mutant: the check's call plus, for a survivor, the equivalence probe."""


# --- the units: what the learner writes, per check ------------------------------------------------------

UNITS = {
    # check: (short name, module, names to mutate ("Class.method" mutates that method only), the answer)
    "TEST_ANCHORS": ("anchors", "retinanet.anchors", ["generate_anchors", "anchor_shapes", "feature_map_shapes",
                                                     "level_stride"], "generate_anchors"),
    "TEST_IOU": ("iou", "retinanet.boxes", ["iou", "box_areas"], "iou"),
    "TEST_MATCHING": ("matching", "retinanet.matching", ["match_anchors", "_pad_one_invalid_box", "_append_row",
                                                        "_as_ground_truth"], "match_anchors"),
    "TEST_BOX_CODING": ("box_coding", "retinanet.boxes", ["encode", "decode", "to_centre_size", "to_corners"],
                        "encode,decode"),
    "TEST_FOCAL_LOSS": ("focal_loss", "retinanet.losses", ["sigmoid_focal_loss"], "sigmoid_focal_loss"),
    "TEST_DETECTION_LOSS": ("detection_loss", "retinanet.losses", ["detection_loss_terms"], "detection_loss_terms"),
    "TEST_DECODE": ("decode", "retinanet.postprocess", ["decode_detections", "top_candidates", "_tensorflow_nms"],
                    "decode_detections"),
    "TEST_FPN": ("fpn", "retinanet.fpn", ["FeaturePyramidNetwork.call", "pyramid_from_features"],
                 "FeaturePyramidNetwork"),
    "TEST_HEAD_MODEL": ("head", "retinanet.heads", ["build_head"], "build_head"),
    "TEST_RETINANET": ("model", "retinanet.model", ["RetinaNet.__init__", "RetinaNet.call", "outputs_from_pyramid"],
                       "RetinaNet(num_classes=3, backbone=small_backbone())"),
}

_VALIDATION = "only validates its arguments (raises on an invalid size or shape), and every call here is valid"
_CAST = "a conversion or cast to the dtype the value already has (float32 inputs, int32 indices)"
_SYMMETRIC = "the arguments of a symmetric operation swapped (maximum, minimum, and, or, ≠, |a − b|, min of two)"
_DEFAULT = "drops an argument whose value is the callee's default (same value either way)"
_UNBATCHED = "axis 1 is axis −1 (and keepdims only changes broadcasting) on the unbatched (N, M) matrices of the contract"
_PADDING = ("the padding row appended for M = 0 is never the best IoU of an anchor with IoU > 0, and matched_index "
            "matters for positive anchors only (any fill, width or negative marker works)")
_EMPTY_LIST = "the branch for an empty Python list `[]`; the contract passes (M, 4) arrays, M = 0 as shape (0, 4)"
_NUMPY = "NumPy's reshape treats any negative size as the inferred one; concatenate's axis is 0 by default"
_NMS_DISPATCH = ("chooses the Keras NMS (retinanet.nms.class_wise_nms) instead of TensorFlow's, or vice versa: the "
                 "suite checks that both give the same detections; a mutation of the branch not taken is unreachable")
_NMS_WIDTH = ("num_classes only sets the width of the one-hot score matrix given to NMS; extra all-zero columns "
              "never produce a detection (score 0 ≤ threshold)")
_TRAINING_PROPAGATES = "Keras passes the outer call's training flag to a nested layer called without one"
_CONTRACT = ("the course's contract: the notebook's own answer (solutions/) omits this guard, so the check must "
             "accept it; the guard only matters outside the inputs the course defines (clamp/epsilon/floor "
             "against overflow or a NaN gradient)")

EQUIVALENT = {
    # mutant id: why it cannot change what the learner's function computes on a valid input (hand-confirmed)
    "anchors-e398a6": _VALIDATION, "anchors-72e601": _VALIDATION, "anchors-b5055a": _VALIDATION,
    "anchors-7b201a": _VALIDATION, "anchors-2d5f2b": "np.array of Python floats is float64 already",
    "anchors-fa3463": _NUMPY, "anchors-0f33de": _NUMPY, "anchors-c114af": _NUMPY, "anchors-158c68": _NUMPY,
    "iou-fdef33": _SYMMETRIC, "iou-f473d3": _SYMMETRIC, "iou-cda1dc": _SYMMETRIC,
    "matching-3eee02": _PADDING, "matching-5450c2": _PADDING, "matching-160f87": _PADDING,
    "matching-1425dc": _PADDING, "matching-1c6461": _PADDING,
    "matching-fb6648": _CAST + "; the int32 validity row works as a where() condition as the bool one",
    "matching-a6873a": _CAST + "; padding a bool row with False", "matching-3b5b3c": _UNBATCHED,
    "matching-599f23": _CAST, "matching-a1f681": _CAST, "matching-f959a7": _CAST + "; ones_like(…) is all true",
    "matching-47723e": "column 1 of the boxes has the same shape as column 0: the mask is all true either way",
    "matching-8a894d": _CAST, "matching-b4836a": _CAST, "matching-89808a": _CAST,
    "matching-9451a8": _EMPTY_LIST, "matching-d6bdb6": _EMPTY_LIST, "matching-31d660": _EMPTY_LIST,
    "matching-2cb60d": _EMPTY_LIST, "matching-593f12": _EMPTY_LIST, "matching-a34fd7": _EMPTY_LIST,
    "matching-f3e3b6": _EMPTY_LIST, "matching-2013ff": _EMPTY_LIST, "matching-2a344a": _EMPTY_LIST,
    "matching-fcee68": _EMPTY_LIST, "matching-ea8a51": _EMPTY_LIST, "matching-046f9d": _EMPTY_LIST,
    "matching-d34d74": _UNBATCHED, "matching-2fadd9": _UNBATCHED, "matching-284144": _UNBATCHED,
    "matching-8e1f17": _UNBATCHED, "matching-28d738": _UNBATCHED,
    "matching-dd388e": _SYMMETRIC, "matching-ecf0de": _SYMMETRIC, "matching-454b85": _SYMMETRIC,
    "matching-473dd9": _SYMMETRIC, "matching-ba221e": _SYMMETRIC,
    "box_coding-c13076": _CONTRACT, "box_coding-ca31c4": _CONTRACT, "box_coding-bac3c7": _SYMMETRIC,
    "box_coding-79ce2c": _CAST, "box_coding-ed6a60": _CAST, "box_coding-8311a1": _SYMMETRIC,
    "focal_loss-550fa1": _CAST, "focal_loss-c3529e": _CAST, "focal_loss-4af6fc": _CAST, "focal_loss-ddc65e": _CAST,
    "focal_loss-77530a": _CONTRACT, "focal_loss-34a31d": _SYMMETRIC,
    "detection_loss-26e5ef": _CAST, "detection_loss-deb513": _CAST, "detection_loss-385668": _CAST,
    "detection_loss-22e7e7": _CAST, "detection_loss-f3d567": _SYMMETRIC, "detection_loss-d67030": _SYMMETRIC,
    "detection_loss-d5b964": "ops.sum of a bool tensor counts its true entries, as the float32 sum does",
    "detection_loss-ee296a": "axis 1 is axis −1 of the (batch, N) labels",
    "detection_loss-686805": "keras.ops.one_hot casts its float indices to int (−1.0 → −1, an all-zero row)",
    "detection_loss-57db2f": "int(−1.1) is −1 as int(−1.0) is: the same all-zero one-hot row",
    "detection_loss-ce6e41": _DEFAULT + " (the learner's detection_loss has no alpha, gamma arguments)",
    "detection_loss-a3fddb": _DEFAULT + " (the learner's detection_loss has no alpha, gamma arguments)",
    "detection_loss-fbbed5": _SYMMETRIC, "detection_loss-130e4e": "axis 1 is axis −1 of the (batch, N) box losses",
    "decode-35e225": "rows × cols per level is symmetric in height and width",
    "decode-16f447": _SYMMETRIC,
    "decode-583dab": "keras.ops.take_along_axis casts a float index to int, truncating the non-negative quotient as // does",
    "decode-3ba4fc": "the indices are below count, so the rows taken from boxes[:, start:] are those of boxes[:, start:start + count]",
    "decode-aa7800": "top_k's indices modulo num_classes are int32 already",
    "decode-ffed2d": _NMS_DISPATCH, "decode-c8eb63": _NMS_DISPATCH, "decode-ebd866": _NMS_DISPATCH,
    "decode-99053e": _NMS_DISPATCH, "decode-02f503": _NMS_DISPATCH, "decode-5147a3": _NMS_DISPATCH,
    "decode-5a8ea3": _NMS_DISPATCH, "decode-ee8111": _NMS_DISPATCH,
    "decode-bcdb27": _CAST, "decode-65f142": _CAST,
    "decode-37eb1d": _NMS_WIDTH, "decode-3614d5": _NMS_WIDTH, "decode-5f31c5": _NMS_WIDTH, "decode-c35c41": _NMS_WIDTH,
    "fpn-43f5b9": _TRAINING_PROPAGATES, "model-69b13e": _TRAINING_PROPAGATES,
    "head-11a0e7": _DEFAULT, "head-ecd749": _DEFAULT, "head-37dfe7": "int() of an int",
    "head-dc03ac": _DEFAULT + " (Conv2D's bias_initializer is 'zeros' by default)",
    "head-fdc1d9": "int() of an int", "head-24d5e5": "int() of an int",
    "model-30a6cb": "every pyramid level has the same batch size",
    "model-3afdb5": "the model's name only", "model-049726": "int() of an int", "model-99576b": "int() of an int",
    "model-766525": _DEFAULT, "model-9b3f9f": _DEFAULT, "model-01de45": _DEFAULT, "model-657136": _DEFAULT,
    "model-a7cdbc": _DEFAULT, "model-4d9750": _VALIDATION,
}


# --- operators -------------------------------------------------------------------------------------------

BIN_SWAPS = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult, ast.FloorDiv],
             ast.FloorDiv: [ast.Div, ast.Mult], ast.Mod: [ast.FloorDiv], ast.Pow: [ast.Mult]}
CMP_SWAPS = {ast.Lt: [ast.LtE], ast.LtE: [ast.Lt], ast.Gt: [ast.GtE], ast.GtE: [ast.Gt], ast.Eq: [ast.NotEq],
             ast.NotEq: [ast.Eq], ast.Is: [ast.IsNot], ast.IsNot: [ast.Is], ast.In: [ast.NotIn], ast.NotIn: [ast.In]}
FUNCTION_SWAPS = {"maximum": ["minimum"], "minimum": ["maximum"], "max": ["min"], "min": ["max"],
                  "argmax": ["argmin"], "argmin": ["argmax"], "exp": ["log"], "log": ["exp"], "log1p": ["log"],
                  "sum": ["mean"], "mean": ["sum"], "reduce_sum": ["reduce_mean"], "reduce_mean": ["reduce_sum"],
                  "logical_and": ["logical_or"], "logical_or": ["logical_and"], "any": ["all"], "all": ["any"],
                  "ceil": ["floor"], "floor": ["ceil"], "divide_no_nan": ["divide"], "sqrt": ["square"],
                  "concatenate": ["stack"], "relu": ["sigmoid"], "sigmoid": ["relu"]}
IDENTITY_FUNCTIONS = {"sigmoid", "relu", "abs", "exp", "log", "log1p", "sqrt", "logical_not", "cast", "clip",
                      "clip_by_value", "int", "maximum", "minimum"}
"""Calls replaced by their first argument (maximum(x, 0) → x: the clamp removed)."""
STRING_SWAPS = {"same": "valid", "valid": "same", "nearest": "bilinear", "relu": "linear", "zeros": "ones",
                "ij": "xy", "float32": "float16", "tensorflow": "keras"}
SWAP_SKIP = {"isinstance", "getattr", "setattr", "Constant", "Conv2D", "UpSampling2D", "RandomNormal"}


def _name_of(call):
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _number(node):
    """The value of a numeric literal (``-1`` included), else None."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float)):
        return -node.operand.value
    return None


def _literal(value):
    return ast.UnaryOp(ast.USub(), ast.Constant(-value)) if value < 0 else ast.Constant(value)


def _number_variants(value):
    if isinstance(value, int):
        out = {0: [1], 1: [0, 2]}.get(value, [value + 1, value - 1])
        if value < 0:
            out = [-value] + out
        return out
    if value == 0.0:
        return [1.0]
    out = [round(value * 1.1, 12), value * 0.5]
    return out + ([-value] if value < 0 else [])


def _assigned_before(function, statement):
    """The names bound before ``statement`` in ``function`` (its parameters, earlier assignments)."""
    names = {a.arg for a in function.args.args + function.args.kwonlyargs}
    for node in ast.walk(function):
        if getattr(node, "lineno", 10 ** 9) < statement.lineno and isinstance(node, ast.Name) and isinstance(
                node.ctx, ast.Store):
            names.add(node.id)
    return names


SIBLING_TOKENS = re.compile(r"[0-9]+|(?<![a-z])(x|y|a|b|height|width|rows|cols|box|cls)(?![a-z])")


def _sibling_key(name):
    """``conv_c3_1x1`` and ``conv_c4_1x1``, ``centre_x`` and ``centre_y``, ``boxes_a`` and ``boxes_b``: one key."""
    return SIBLING_TOKENS.sub("#", name)


def _siblings(name, function):
    """The other names (or attributes) of ``function`` that differ from ``name`` only by an index or an axis."""
    key = _sibling_key(name)
    if key == name:
        return []
    used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(function) if isinstance(n, ast.Attribute)} | {a.arg for a in function.args.args}
    return sorted(other for other in used if other != name and _sibling_key(other) == key)


def _missing_function(call, new):
    """``math.square``: a swap to a function that the call's module (math, NumPy) does not have."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("math", "np"):
        return not hasattr(math if func.value.id == "math" else np, new)
    return isinstance(func, ast.Name) and new not in dir(builtins) and func.id in dir(builtins)


def mutations(node, parent, function):
    """``[(label, replace)]``: each way of mutating ``node``; ``replace(copied node)`` returns its replacement."""
    found = []
    add = found.append
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        for other in _siblings(node.id, function):
            add((f"{node.id}→{other}", lambda n, other=other: _set(n, id=other)))
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        for other in _siblings(node.attr, function):
            add((f".{node.attr}→.{other}", lambda n, other=other: _set(n, attr=other)))
    if isinstance(node, ast.BinOp) and type(node.op) in BIN_SWAPS:
        for op in BIN_SWAPS[type(node.op)]:
            add((f"{type(node.op).__name__}→{op.__name__}", lambda n, op=op: _set(n, op=op())))
    elif isinstance(node, ast.Compare):
        for index, operator in enumerate(node.ops):
            for op in CMP_SWAPS.get(type(operator), []):
                add((f"{type(operator).__name__}→{op.__name__}",
                     lambda n, i=index, op=op: _set(n, ops=n.ops[:i] + [op()] + n.ops[i + 1:])))
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        add((f"{type(node.op).__name__}→{other.__name__}", lambda n: _set(n, op=other())))
    elif _number(node) is not None and not isinstance(node.value if isinstance(node, ast.Constant) else None, bool):
        value = _number(node)
        for new in _number_variants(value):
            add((f"{value!r}→{new!r}", lambda n, new=new: _literal(new)))
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        add((f"{node.value}→{not node.value}", lambda n: ast.Constant(not n.value)))
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in STRING_SWAPS:
        new = STRING_SWAPS[node.value]
        add((f"{node.value!r}→{new!r}", lambda n: ast.Constant(new)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not, ast.Invert)):
        add((f"{type(node.op).__name__} removed", lambda n: n.operand))
    elif isinstance(node, ast.Slice):
        for bound in ("lower", "upper"):
            if getattr(node, bound) is not None:
                add((f"slice {bound} bound dropped", lambda n, b=bound: _set(n, **{b: None})))
    elif isinstance(node, ast.Call):
        name = _name_of(node)
        for new in FUNCTION_SWAPS.get(name, []):
            if _missing_function(node, new):
                continue
            add((f"{name}→{new}", lambda n, new=new: _rename(n, new)))
        if name in IDENTITY_FUNCTIONS and node.args and not any(isinstance(a, ast.Starred) for a in node.args):
            add((f"{name}(x, …)→x", lambda n: n.args[0]))
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        if name == "where" and len(positional) == 3:
            add(("where branches swapped", lambda n: _set(n, args=[n.args[0], n.args[2], n.args[1]])))
        elif (len(positional) >= 2 and len(positional) == len(node.args) and name not in SWAP_SKIP
              and not any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2])):
            add((f"{name} arguments 1, 2 swapped", lambda n: _set(n, args=[n.args[1], n.args[0]] + n.args[2:])))
        for index, keyword in enumerate(node.keywords):
            if keyword.arg is None:
                continue
            add((f"{name}: {keyword.arg}= dropped",
                 lambda n, i=index: _set(n, keywords=n.keywords[:i] + n.keywords[i + 1:])))
            if keyword.arg == "training":
                add((f"{name}: training=True", lambda n, i=index: _keyword(n, i, ast.Constant(True))))
        for index, argument in enumerate(node.args):
            if isinstance(argument, (ast.List, ast.Tuple)) and len(argument.elts) == 2 and name in (
                    "concatenate", "stack", "concat"):
                add((f"{name}: the two parts swapped",
                     lambda n, i=index: _set(n, args=n.args[:i] + [_swapped(n.args[i], 0)] + n.args[i + 1:])))
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        if node.targets[0].id in _assigned_before(function, node):
            add(("assignment removed (keeps the old value)", lambda n: ast.Pass()))
    elif isinstance(node, ast.AugAssign):
        add(("augmented assignment removed", lambda n: ast.Pass()))
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        add(("statement removed", lambda n: ast.Pass()))
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
        for index in range(len(node.value.elts) - 1):
            add((f"returned values {index}, {index + 1} swapped",
                 lambda n, i=index: _set(n, value=_swapped(n.value, i))))
    return found


def _set(node, **fields):
    for key, value in fields.items():
        setattr(node, key, value)
    return node


def _rename(call, new):
    if isinstance(call.func, ast.Attribute):
        call.func.attr = new
    else:
        call.func.id = new
    return call


def _keyword(call, index, value):
    call.keywords[index].value = value
    return call


def _swapped(sequence, index):
    elements = list(sequence.elts)
    elements[index], elements[index + 1] = elements[index + 1], elements[index]
    sequence.elts = elements
    return sequence


def _validation(statement):
    """``if …: raise …`` (input validation) and bare ``raise``: not mutated."""
    if isinstance(statement, ast.Raise):
        return True
    return isinstance(statement, ast.If) and all(isinstance(s, ast.Raise) for s in statement.body) and not statement.orelse


def _docstring(node):
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


# --- enumeration -----------------------------------------------------------------------------------------

def unit_tree(check):
    """The unit of ``check``: a Module of its definitions (decorators stripped) and the function nodes to mutate."""
    _, module, names, _ = UNITS[check]
    path = ROOT / (module.replace(".", "/") + ".py")
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    wanted = {}
    for name in names:
        top, _, method = name.partition(".")
        wanted.setdefault(top, set()).add(method)
    body = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in wanted:
            node.decorator_list = []
            body.append(node)
    return path, source, ast.Module(body=body, type_ignores=[])


def _mutable_functions(check, module_tree):
    _, _, names, _ = UNITS[check]
    functions = []
    for node in module_tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            functions.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and f"{node.name}.{item.name}" in names:
                    functions.append((f"{node.name}.{item.name}", item))
    return functions


def _walk_mutable(function):
    """``(node, parent)`` of every mutable node of ``function``'s body, parents before children."""
    stack = [(statement, function) for statement in reversed(function.body)]
    stack += [(default, function.args) for default in reversed(function.args.defaults)]
    while stack:
        node, parent = stack.pop()
        if _docstring(node) or _validation(node):
            continue
        yield node, parent
        if _number(node) is not None and isinstance(node, ast.UnaryOp):
            continue  # -1 is one literal
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.JoinedStr):
            continue
        stack.extend((child, node) for child in reversed(children))


def _statement_of(node, parents):
    while not isinstance(node, ast.stmt):
        node = parents[id(node)]
    return node


def _head(node):
    return ast.unparse(node).splitlines()[0] if not isinstance(node, ast.Pass) else "(removed)"


def enumerate_mutants(check):
    """Every mutant of ``check``'s unit: ``[{id, check, function, line, operator, original, mutated, key}]``."""
    path, source, module_tree = unit_tree(check)
    short = UNITS[check][0]
    mutants, seen = [], {}
    for function_name, function in _mutable_functions(check, module_tree):
        walked = list(_walk_mutable(function))
        parents = {id(node): parent for node, parent in walked}
        parents[id(function.args)] = function
        for index, (node, parent) in enumerate(walked):
            for label, replace in mutations(node, parent, function):
                mutated_tree = copy.deepcopy(module_tree)
                target = _locate(mutated_tree, check, function_name, index)
                statement = _statement_of(node, parents)
                mutated_statement = _apply(mutated_tree, target, replace, statement, check, function_name, walked)
                original, mutated = _head(statement), _head(mutated_statement)
                if original == mutated:
                    continue
                text = f"{check}|{function_name}|{original}|{mutated}"
                occurrence = seen.get(text, 0)
                seen[text] = occurrence + 1
                digest = hashlib.sha1(f"{text}|{occurrence}".encode()).hexdigest()[:6]
                mutants.append({
                    "id": f"{short}-{digest}", "check": check, "function": function_name,
                    "line": f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', statement.lineno)}",
                    "operator": label, "original": original, "mutated": mutated,
                    "key": [function_name, index, label],
                })
    return mutants


def _locate(module_tree, check, function_name, index):
    function = dict(_mutable_functions(check, module_tree))[function_name]
    return list(_walk_mutable(function))[index]


def _apply(module_tree, located, replace, original_statement, check, function_name, walked):
    """Replace the located node in ``module_tree``; return the mutated statement that holds it."""
    node, parent = located
    function = dict(_mutable_functions(check, module_tree))[function_name]
    parents = {id(n): p for n, p in _walk_mutable(function)}
    parents[id(function.args)] = function
    replacement = replace(node)
    if replacement is not node:
        _replace_child(parent, node, replacement)
        parents[id(replacement)] = parent
    ast.fix_missing_locations(module_tree)
    target = replacement
    return target if isinstance(target, ast.stmt) else _statement_of(target, parents)


def _replace_child(parent, old, new):
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return
    raise LookupError("node not found in its parent")


def all_mutants(checks=None):
    return [m for check in (checks or UNITS) for m in enumerate_mutants(check)]


def baselines(checks=None):
    """One unmutated unit per check: the reference itself must pass its check (else every mutant is "killed")."""
    return [{"id": f"baseline-{UNITS[check][0]}", "check": check, "function": None, "line": None, "operator": None,
             "original": None, "mutated": None, "key": None} for check in (checks or UNITS)]


def mutated_module(mutant):
    """The unit of ``mutant`` with its one change, as a Module tree (the unit itself for a baseline)."""
    check = mutant["check"]
    _, _, module_tree = unit_tree(check)
    if mutant["key"] is None:
        return module_tree
    function_name, index, label = mutant["key"]
    node, parent = _locate(module_tree, check, function_name, index)
    function = dict(_mutable_functions(check, module_tree))[function_name]
    replace = dict(mutations(node, parent, function))[label]
    _apply(module_tree, (node, parent), replace, None, check, function_name, None)
    return module_tree


# --- running one mutant (in a worker) --------------------------------------------------------------------

def build_namespace(check, module_tree, tag):
    """Execute the unit's definitions in a copy of the reference module's globals."""
    import linecache

    module = importlib.import_module(UNITS[check][1])
    namespace = dict(vars(module))
    source = ast.unparse(module_tree)
    filename = f"<mutant {tag}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 (our own reference code, mutated)
    return namespace


def answer(check, namespace):
    """What the learner passes to the check, from the unit's namespace."""
    if check == "TEST_RETINANET":
        from course_checks.harness import small_backbone
        return (namespace["RetinaNet"](num_classes=3, backbone=small_backbone()),)
    return tuple(namespace[name] for name in UNITS[check][3].split(","))


def reference_namespace(check):
    return build_namespace(check, unit_tree(check)[2], f"reference {check}")


def run_mutant(mutant):
    """Classify one mutant (see the module docstring): a dict with ``status`` and details."""
    import contextlib
    import io
    import traceback

    import tests
    from course_checks.harness import first_line

    check = mutant["check"]
    try:
        namespace = build_namespace(check, mutated_module(mutant), mutant["id"])
        arguments = answer(check, namespace)
    except Exception as error:  # the learner's cell itself raises: the check never runs
        return {"status": "stillborn", "message": f"the cell raised {type(error).__name__}: {first_line(error)}"}
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            getattr(tests, check)(*arguments)
    except AssertionError as failure:
        return {"status": "killed", "message": first_line(failure, 300), "cause": getattr(failure, "cause", None)}
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        ours = [f"{pathlib.Path(f.filename).name}:{f.lineno}" for f in frames if "course_checks" in f.filename]
        return {"status": "error", "message": f"{type(error).__name__}: {first_line(error, 300)}",
                "where": ours[-1] if ours else None}
    if mutant["key"] is None:
        witness, samples = probe(check, reference_namespace(check), namespace)
        return {"status": "passed", "probe": witness or f"no difference from itself on {samples} inputs"}
    witness, samples = probe(check, reference_namespace(check), namespace)
    if mutant["id"] in EQUIVALENT:  # the probe's finding is kept beside the hand-confirmed reason
        return {"status": "equivalent", "reason": EQUIVALENT[mutant["id"]], "confirmed": True,
                "probe": witness or f"no difference on {samples} random valid inputs"}
    if witness is None:
        return {"status": "equivalent", "confirmed": False,
                "reason": f"candidate: no difference from the reference on {samples} random valid inputs"}
    return {"status": "survived", "witness": witness, "passed_line": out.getvalue().strip()[:200]}


# --- the equivalence probes: mutant vs reference on many random valid inputs ------------------------------

def _same(a, b, rtol=1e-5, atol=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def _outcome(function, *args, **kwargs):
    """``("ok", value as NumPy)`` or ``("raises", type)``."""
    from retinanet._keras import keras

    try:
        value = function(*args, **kwargs)
    except Exception as error:
        return "raises", type(error).__name__
    convert = lambda v: np.asarray(keras.ops.convert_to_numpy(v))  # noqa: E731
    if isinstance(value, (tuple, list)):
        return "ok", [convert(v) for v in value]
    return "ok", [convert(value)]


def _compare(reference, mutant, what, *args, mask=None, **kwargs):
    ref, mut = _outcome(reference, *args, **kwargs), _outcome(mutant, *args, **kwargs)
    if ref[0] != mut[0]:
        return f"{what}: reference {ref[0]}, mutant {mut[0]} {mut[1] if mut[0] == 'raises' else ''}".strip()
    if ref[0] == "raises":
        return None
    if len(ref[1]) != len(mut[1]):
        return f"{what}: {len(mut[1])} outputs instead of {len(ref[1])}"
    for index, (a, b) in enumerate(zip(ref[1], mut[1])):
        if a.dtype.kind != b.dtype.kind and {a.dtype.kind, b.dtype.kind} != {"i", "u"}:
            return f"{what}: output {index} is {b.dtype} instead of {a.dtype}"
        if mask is not None:
            a, b = mask(index, a, b, ref[1])
        if not _same(a, b):
            return f"{what}: output {index} differs"
    return None


def _boxes(rng, count, scale=100.0, empty=0.1):
    corner = rng.uniform(0, scale, size=(count, 2))
    size = rng.uniform(0.5, scale / 2, size=(count, 2)) * (rng.random((count, 1)) > empty)
    return np.concatenate([corner, corner + size], -1).astype(np.float32)


def probe(check, reference, mutant, samples=60):
    """``(witness or None, samples)``: the first input on which the mutant's answer differs from the reference's."""
    rng = np.random.default_rng(0)
    return PROBES[check](rng, reference, mutant, samples), PROBE_SAMPLES.get(check, samples)


def _probe_anchors(rng, ref, mut, samples):
    for height, width in [(32, 32), (64, 64), (64, 160), (128, 128), (96, 32), (256, 192), (512, 512), (640, 384)]:
        witness = _compare(ref["generate_anchors"], mut["generate_anchors"], f"{height}×{width}", height, width)
        if witness:
            return witness


def _probe_iou(rng, ref, mut, samples):
    for sample in range(samples):
        a, b = _boxes(rng, rng.integers(1, 8)), _boxes(rng, rng.integers(1, 8))
        if sample % 3 == 0:
            b[: len(a)] = a[: len(b)]
        witness = _compare(ref["iou"], mut["iou"], f"boxes {a.tolist()} and {b.tolist()}", a, b)
        if witness:
            return witness


def _probe_matching(rng, ref, mut, samples):
    def positive_only(index, a, b, outputs):  # matched_index matters for positive anchors only
        if index == 0:
            positive = outputs[1].astype(bool)
            return a[positive], b[positive]
        return a, b

    anchors = np.asarray(ref["generate_anchors"](64, 64) if "generate_anchors" in ref else
                         __import__("retinanet.anchors").anchors.generate_anchors(64, 64))
    for sample in range(samples):
        count = int(rng.integers(0, 6))
        gt = _boxes(rng, count, scale=64.0, empty=0.0)
        if count and sample % 2 == 0:
            gt[0] = anchors[rng.integers(len(anchors))] + rng.normal(0, 2, 4).astype(np.float32)
            gt[0, 2:] = np.maximum(gt[0, 2:], gt[0, :2] + 1)
        witness = _compare(ref["match_anchors"], mut["match_anchors"], f"{count} boxes {gt.tolist()}", anchors, gt,
                           mask=positive_only)
        if witness:
            return witness


def _probe_box_coding(rng, ref, mut, samples):
    for sample in range(samples):
        shape = (int(rng.integers(1, 6)),) if sample % 2 else (2, int(rng.integers(1, 4)))
        anchors = _boxes(rng, int(np.prod(shape)), empty=0.0).reshape(*shape, 4)
        boxes = _boxes(rng, int(np.prod(shape)), empty=0.0).reshape(*shape, 4)
        deltas = rng.normal(0, 3 if sample % 3 else 15, size=(*shape, 4)).astype(np.float32)
        for witness in (_compare(ref["encode"], mut["encode"], f"encode({anchors.tolist()}, {boxes.tolist()})",
                                 anchors, boxes),
                        _compare(ref["decode"], mut["decode"], f"decode({anchors.tolist()}, {deltas.tolist()})",
                                 anchors, deltas)):
            if witness:
                return witness


def _probe_focal_loss(rng, ref, mut, samples):
    for sample in range(samples):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
        labels = (rng.random(shape) < 0.4).astype(np.float32)
        logits = rng.normal(0, 8 if sample % 4 == 0 else 2, size=shape).astype(np.float32)
        alpha, gamma = float(rng.uniform(0, 1)), float(rng.choice([0.0, 0.5, 1.0, 2.0, 3.5, 5.0]))
        witness = _compare(ref["sigmoid_focal_loss"], mut["sigmoid_focal_loss"],
                           f"labels {labels.tolist()}, logits {logits.tolist()}, alpha={alpha:.3f}, gamma={gamma}",
                           labels, logits, alpha=alpha, gamma=gamma)
        if witness:
            return witness


def _probe_detection_loss(rng, ref, mut, samples):
    for sample in range(samples):
        classes, batch, anchors = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 12))
        labels = rng.integers(-2, classes, size=(batch, anchors)).astype(np.float32)
        targets = np.concatenate([rng.normal(0, 2, (batch, anchors, 4)), labels[..., None]], -1).astype(np.float32)
        predictions = rng.normal(0, 2, (batch, anchors, 4 + classes)).astype(np.float32)
        witness = _compare(ref["detection_loss_terms"], mut["detection_loss_terms"],
                           f"targets {targets.tolist()}, predictions {predictions.tolist()}, K={classes}",
                           targets, predictions, classes)
        if witness:
            return witness


def _probe_decode(rng, ref, mut, samples):
    from retinanet.anchors import generate_anchors

    options = [{}, {"score_threshold": 0.3}, {"nms_iou_threshold": 0.3}, {"max_detections": 7},
               {"top_k_per_level": 5}, {"score_threshold": 0.01, "nms_iou_threshold": 0.7, "max_detections": 20}]
    for sample in range(min(samples, 24)):
        height, width = [(64, 64), (64, 128), (128, 96)][sample % 3]
        count, classes = len(generate_anchors(height, width)), int(rng.integers(1, 4))
        predictions = np.concatenate([rng.normal(0, 1, (2, count, 4)), rng.normal(-2, 2, (2, count, classes))],
                                     -1).astype(np.float32)
        kwargs = options[sample % len(options)]
        witness = _compare(ref["decode_detections"], mut["decode_detections"],
                           f"{height}×{width}, K={classes}, {kwargs}", predictions, height, width, **kwargs)
        if witness:
            return witness


def _probe_backbone():
    """A small backbone with batch normalisation (so that a wrong ``training`` flag shows)."""
    from retinanet._keras import keras

    inputs = keras.Input(shape=(None, None, 3))
    features, x = [], inputs
    for index, (filters, strides) in enumerate(zip((8, 16, 32), (8, 2, 2))):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same",
                                kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=index))(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        features.append(x)
    return keras.Model(inputs, features)


def _configs(layers):
    out = []
    for layer in layers:
        config = dict(layer.get_config())
        config.pop("name", None)
        out.append((type(layer).__name__, json.dumps(config, sort_keys=True, default=str)))
    return out


def _outputs_equal(ref_model, mut_model, batches, **kwargs):
    for batch in batches:
        witness = _compare(ref_model, mut_model, f"images {batch.shape}, {kwargs}", batch, **kwargs)
        if witness:
            return witness


def _copy_weights(ref_model, mut_model):
    ref_weights, mut_weights = ref_model.get_weights(), mut_model.get_weights()
    if [w.shape for w in ref_weights] != [w.shape for w in mut_weights]:
        return "different weights: " + str([w.shape for w in mut_weights][:6])
    mut_model.set_weights(ref_weights)
    return None


def _probe_fpn(rng, ref, mut, samples):
    backbone = _probe_backbone()
    batches = [rng.normal(0, 30, (2, h, w, 3)).astype(np.float32) for h, w in [(64, 64), (128, 96), (96, 160)]]
    reference, mutant = ref["FeaturePyramidNetwork"](backbone=backbone), mut["FeaturePyramidNetwork"](backbone=backbone)
    for model in (reference, mutant):
        try:
            model(batches[0], training=False)
        except Exception as error:
            return f"calling it raises {type(error).__name__}"
    witness = _copy_weights(reference, mutant)
    if witness:
        return witness
    return (_outputs_equal(reference, mutant, batches, training=False)
            or _outputs_equal(reference, mutant, batches[:1], training=True)
            or _outputs_equal(reference, mutant, batches[:1]))


def _probe_head(rng, ref, mut, samples):
    from retinanet._keras import keras

    for args, kwargs in [((36,), {}), ((27,), {"bias_initializer": keras.initializers.Constant(-4.6)}), ((9,), {})]:
        outcome = []
        for namespace in (ref, mut):
            try:
                outcome.append(namespace["build_head"](*args, **kwargs))
            except Exception as error:
                outcome.append(error)
        reference, mutant = outcome
        if isinstance(mutant, Exception):
            return f"build_head{args} raises {type(mutant).__name__}"
        if _configs(reference.layers) != _configs(mutant.layers):
            return f"build_head{args}: different layers {_configs(mutant.layers)[-1]}"
        witness = _copy_weights(reference, mutant)
        if witness:
            return witness
        features = rng.normal(0, 1, (2, 8, 8, 256)).astype(np.float32)
        witness = _outputs_equal(reference, mutant, [features])
        if witness:
            return witness


def _probe_model(rng, ref, mut, samples):
    backbone = _probe_backbone()
    for classes in (3, 5):
        try:
            mutant = mut["RetinaNet"](num_classes=classes, backbone=backbone)
        except Exception as error:
            return f"RetinaNet(num_classes={classes}) raises {type(error).__name__}"
        reference = ref["RetinaNet"](num_classes=classes, backbone=backbone)
        batches = [rng.normal(0, 30, (2, h, w, 3)).astype(np.float32) for h, w in [(64, 64), (96, 128)]]
        for model in (reference, mutant):
            try:
                model(batches[0], training=False)
            except Exception as error:
                return f"calling it raises {type(error).__name__}"
        if _configs(reference.cls_head.layers + reference.box_head.layers) != _configs(
                mutant.cls_head.layers + mutant.box_head.layers):
            return "the subnets' layers differ"
        witness = (_copy_weights(reference, mutant) or _outputs_equal(reference, mutant, batches, training=False)
                   or _outputs_equal(reference, mutant, batches[:1], training=True)
                   or _outputs_equal(reference, mutant, batches[:1]))
        if witness:
            return f"num_classes={classes}: {witness}"


PROBE_SAMPLES = {"TEST_ANCHORS": 8, "TEST_DECODE": 24, "TEST_FPN": 5, "TEST_HEAD_MODEL": 3, "TEST_RETINANET": 8}
"""How many inputs (image sizes, argument sets, builds) the probes with fewer than 60 try."""

PROBES = {"TEST_ANCHORS": _probe_anchors, "TEST_IOU": _probe_iou, "TEST_MATCHING": _probe_matching,
          "TEST_BOX_CODING": _probe_box_coding, "TEST_FOCAL_LOSS": _probe_focal_loss,
          "TEST_DETECTION_LOSS": _probe_detection_loss, "TEST_DECODE": _probe_decode, "TEST_FPN": _probe_fpn,
          "TEST_HEAD_MODEL": _probe_head, "TEST_RETINANET": _probe_model}


def worker():
    """Read mutant ids from stdin, one a line; answer each with one JSON line on stdout."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # anything printed by imports goes elsewhere
    importlib.import_module("tests")  # TensorFlow, once

    by_id = {m["id"]: m for m in all_mutants() + baselines()}
    real_stdout.write(json.dumps({"ready": True}) + "\n")
    real_stdout.flush()
    for line in sys.stdin:
        mutant = by_id[line.strip()]
        started = time.perf_counter()
        try:
            result = run_mutant(mutant)
        except Exception as error:  # the tool's own failure, reported rather than hidden
            result = {"status": "error", "message": f"tool: {type(error).__name__}: {error}"}
        result["seconds"] = round(time.perf_counter() - started, 3)
        real_stdout.write(json.dumps({"id": mutant["id"], **result}, default=str) + "\n")
        real_stdout.flush()


# --- the pool ------------------------------------------------------------------------------------------

class Worker:
    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker"], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=1)
        self.ready, self.current, self.started, self.buffer = False, None, time.monotonic(), ""

    def send(self, mutant_id):
        self.current, self.started = mutant_id, time.monotonic()
        self.process.stdin.write(mutant_id + "\n")
        self.process.stdin.flush()

    def stop(self):
        self.process.kill()  # our own child, by its handle
        self.process.wait()


def run_all(mutants, jobs=2, time_limit=TIME_LIMIT_S, progress=None):
    """Results by mutant id, running ``mutants`` in ``jobs`` worker processes."""
    queue, results, workers = [m["id"] for m in mutants], {}, [Worker() for _ in range(jobs)]
    try:
        while len(results) < len(mutants):
            for worker_ in list(workers):
                if worker_.ready and worker_.current is None and queue:
                    worker_.send(queue.pop(0))
            streams = {w.process.stdout.fileno(): w for w in workers}
            readable, _, _ = select.select(list(streams), [], [], 1.0)
            for fd in readable:
                w = streams[fd]
                line = w.process.stdout.readline()
                if not line:  # the worker died
                    if w.current is not None:
                        results[w.current] = {"status": "error", "message": "the worker process died",
                                              "seconds": round(time.monotonic() - w.started, 3)}
                    workers.remove(w)
                    w.stop()
                    workers.append(Worker())
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if message.get("ready"):
                    w.ready = True
                elif message.get("id") == w.current:
                    results[message.pop("id")] = message
                    w.current = None
                    if progress:
                        progress(len(results), len(mutants), message)
            for w in list(workers):
                if w.current is not None and time.monotonic() - w.started > time_limit:
                    results[w.current] = {"status": "timeout", "seconds": round(time_limit, 1)}
                    workers.remove(w)
                    w.stop()
                    workers.append(Worker())
                    if progress:
                        progress(len(results), len(mutants), results[w.current])
    finally:
        for w in workers:
            w.stop()
    return results


def sample(mutants, size, seed):
    """A seeded sample of ``size`` mutants, spread over the checks in proportion (at least one each)."""
    rng = random.Random(seed)
    if size >= len(mutants):
        return list(mutants)
    by_check = {}
    for mutant in mutants:
        by_check.setdefault(mutant["check"], []).append(mutant)
    chosen = []
    for check, group in by_check.items():
        share = max(1, round(size * len(group) / len(mutants)))
        chosen += rng.sample(group, min(share, len(group)))
    return chosen


def change(original, mutated, context=25):
    """The differing middle of two lines with some context: ``…(x, training=[training → True])…``."""
    if mutated == "(removed)":
        return f"[{original} → (removed)]"
    start = 0
    while start < min(len(original), len(mutated)) and original[start] == mutated[start]:
        start += 1
    end = 0
    while (end < min(len(original), len(mutated)) - start
           and original[len(original) - 1 - end] == mutated[len(mutated) - 1 - end]):
        end += 1
    boundary = " ([{,"
    while start > 0 and original[start - 1] not in boundary:  # whole words: "[/ → //]", not "/[ → /]"
        start -= 1
    while end > 0 and original[len(original) - end] not in " )]},:":
        end -= 1
    before = original[max(0, start - context):start]
    after = original[len(original) - end:][:context]
    return (("…" if start > context else "") + f"{before}[{original[start:len(original) - end]} → "
            f"{mutated[start:len(mutated) - end]}]{after}" + ("…" if end > context else ""))


def _short(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(mutants, results):
    """The JSON's per-check figures and lists."""
    checks = {}
    for mutant in mutants:
        result = results[mutant["id"]]
        entry = checks.setdefault(mutant["check"], {
            "mutants": 0, "equivalent": 0, "killed": 0, "survived": 0, "errors": 0, "timeouts": 0, "stillborn": 0,
            "seconds": 0.0, "survivors": [], "equivalents": [], "crashes": [], "killed_by": []})
        entry["mutants"] += 1
        entry["seconds"] = round(entry["seconds"] + (result.get("seconds") or 0.0), 3)
        status = result["status"]
        described = {"id": mutant["id"], "line": mutant["line"], "operator": mutant["operator"],
                     "change": change(mutant["original"], mutant["mutated"]),
                     "diff": f"{mutant['original']}  →  {mutant['mutated']}"}
        if status in ("killed", "stillborn"):
            entry["killed"] += 1
            entry["stillborn"] += status == "stillborn"
            entry["killed_by"].append({"id": mutant["id"], "cause": result.get("cause"),
                                       "message": _short(result["message"], 200)})
        elif status == "equivalent":
            entry["equivalent"] += 1
            entry["equivalents"].append({**described, "reason": result["reason"],
                                         "confirmed": result.get("confirmed", False),
                                         "probe": _short(result.get("probe") or "", 160)})
        elif status == "survived":
            entry["survived"] += 1
            entry["survivors"].append({**described, "witness": _short(result["witness"], 240)})
        elif status == "timeout":
            entry["timeouts"] += 1
            entry["crashes"].append({**described, "outcome": "timeout"})
        else:
            entry["errors"] += 1
            entry["crashes"].append({**described, "outcome": result["message"], "where": result.get("where")})
    for entry in checks.values():
        entry["killed_as_crash"] = sum(1 for k in entry["killed_by"] if k["cause"] is None and " raised " in k["message"])
        relevant = entry["mutants"] - entry["equivalent"]
        entry["score"] = round(entry["killed"] / relevant, 4) if relevant else 1.0
    return checks


def machine():
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name"))
    except Exception:
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, help="run a seeded sample of this many mutants (not written)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="append", help="only this check (TEST_IOU, ...; repeatable; not written)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--output", default=str(OUTPUT))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.worker:
        return worker()
    mutants = all_mutants(options.check)
    if options.list:
        for m in mutants:
            print(f"{m['id']}  {m['line']}  {m['operator']}: {m['original']}  →  {m['mutated']}")
        print(f"{len(mutants)} mutants")
        return 0
    chosen = sample(mutants, options.sample, options.seed) if options.sample else mutants

    def progress(done, total, result):
        print(f"\r{done}/{total} {result['status']:<10}", end="", file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    started = time.monotonic()
    checks_run = sorted({m["check"] for m in chosen}, key=list(UNITS).index)
    results = run_all(baselines(checks_run) + chosen, options.jobs, progress=progress)
    seconds = time.monotonic() - started
    print(file=sys.stderr)
    failing = {b["check"]: results[b["id"]] for b in baselines(checks_run) if results[b["id"]]["status"] != "passed"}
    if failing:
        print(f"the reference itself does not pass: {failing}", file=sys.stderr)
        return 1
    checks = summary(chosen, results)
    total = {key: sum(c[key] for c in checks.values()) for key in
             ("mutants", "equivalent", "killed", "killed_as_crash", "survived", "errors", "timeouts", "stillborn")}
    total["score"] = round(total["killed"] / max(1, total["mutants"] - total["equivalent"]), 4)
    report = {
        "date": datetime.date.today().isoformat(), "machine": machine(), "python": platform.python_version(),
        "jobs": options.jobs, "seconds": round(seconds, 1), "time_limit_s": TIME_LIMIT_S,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "sample": None if not options.sample else {"size": len(chosen), "seed": options.seed},
        "method": "each mutant of the reference unit passed to its check as the learner's answer; survivors "
                  "compared with the reference on random valid inputs (benchmarks/mutation.py)",
        "baselines": {b["check"]: {"status": results[b["id"]]["status"], "probe": results[b["id"]].get("probe")}
                      for b in baselines(checks_run)},
        "total": total, "checks": checks,
    }
    for check, entry in checks.items():
        print(f"{check:<20} {entry['mutants']:4} mutants  {entry['equivalent']:3} equivalent  "
              f"{entry['killed']:4} killed  {entry['survived']:3} survived  {entry['errors']:2} errors  "
              f"{entry['timeouts']:2} timeouts  score {entry['score']:.3f}")
    print(f"total {total}; {seconds:.0f} s")
    if options.output != str(OUTPUT) or not (options.sample or options.check):  # the whole set, or asked for
        pathlib.Path(options.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
