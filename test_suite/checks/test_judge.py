"""One definition per check, two ways to run it: the judge (through the probe wire) decides as the notebook does.

While grading, a check runs in the grader's process with :class:`course_checks.remote.Remote` handles to
the learner's objects (``docs/design.md``, *Verdicts*). Here the probe agent answers in this process, but
every request and answer goes through the real wire format (JSON text), so a check sees exactly what it
sees in a graded kernel. For the reference solution of every check and for each mistake of the catalogue
(``test_suite/checks/mistakes/``) the verdict through handles must equal the verdict on the objects themselves;
and the wire refuses what the kernel must not be able to send.
"""

import json

import numpy as np
import pytest

import tests
from course_checks import probe
from course_checks.remote import Link, ProbeFailed, Remote, is_remote
from test_mistakes import MISTAKES
from course_checks.reference import REFERENCE_ARGUMENTS


def handles(*values):
    """Handles to ``values`` through an agent in this process, over the JSON wire."""
    namespace = {f"value{index}": value for index, value in enumerate(values)}
    agent = probe.Agent(namespace)
    link = Link(agent.handle)
    return [link.bind(name) for name in namespace]


@pytest.fixture(params=[None, 20261207, 7], ids=["notebook-inputs", "run-seed-a", "run-seed-b"])
def run_seed(request):
    """The inputs of a notebook, and of two grading runs (the judge draws a fresh seed per run)."""
    tests.draw_inputs(request.param)
    yield request.param
    tests.draw_inputs(None)


@pytest.fixture
def grading_inputs():
    """A grading run's inputs (test_mistakes.py runs every mutant on the notebook's)."""
    tests.draw_inputs(20261207)
    yield
    tests.draw_inputs(None)


def verdict(check, arguments):
    """``(cause or None, message)`` of ``check(*arguments)``."""
    try:
        check(*arguments)
    except AssertionError as failure:
        return getattr(failure, "cause", None), str(failure)
    return None, ""


@pytest.mark.parametrize("name", sorted(REFERENCE_ARGUMENTS))
def test_the_reference_passes_every_check_through_handles(name, run_seed, capsys):
    arguments = REFERENCE_ARGUMENTS[name]()
    remote = handles(*arguments)
    assert all(is_remote(r) or not callable(r) for r in remote)
    assert verdict(getattr(tests, name), remote) == (None, "")
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_gets_the_same_verdict_through_handles(name, grading_inputs):
    mistake = MISTAKES[name]
    check = getattr(tests, mistake.CHECK)
    cause, message = verdict(check, handles(*mistake.arguments()))
    assert cause == mistake.CAUSE, f"through handles {mistake.CHECK} blamed {cause}: {message}"
    assert mistake.KEYWORD in message


def test_arrays_and_structures_cross_as_plain_data():
    value = {"a": (np.arange(6, dtype=np.float32).reshape(2, 3), [1, 2.5, None, True, "x"]), "b": float("nan")}
    decoded = probe.decode(json.loads(json.dumps(probe.encode(value))))
    assert decoded["a"][1] == [1, 2.5, None, True, "x"] and np.isnan(decoded["b"])
    np.testing.assert_array_equal(decoded["a"][0], value["a"][0])


@pytest.mark.parametrize("node", [
    {"keras": {"module": "os", "class_name": "system", "config": {}}, "weights": []},
    {"keras": {"module": "keras.layers", "class_name": "Lambda", "config": {"function": "x"}}, "weights": []},
    {"keras": {"module": "keras.layers", "class_name": "Dense", "config": {"units": 1},
               "registered_name": "evil>Thing"}, "weights": []},
    {"keras": {"module": "keras.layers", "class_name": "Dense", "config": {"units": 10**10, "name": "d"},
               "build_config": {"input_shape": [None, 10**6]}}, "weights": []},
    {"array": "not base64!"},
    {"pickle": "gASV"},
    {"remote": 1, "type": "x"},
])
def test_the_judge_refuses_answers_outside_the_wire_format(node):
    link = Link(lambda request: json.dumps({"value": node}))
    link.resolve = None  # no handles may be made from this answer either
    with pytest.raises((ProbeFailed, TypeError)):
        link.ask({"op": "bind", "name": "x"})


class Holder:
    """A learner's object holding a Keras layer (weights over ``probe.REUSE_BYTES``: copies that large carry
    a fingerprint), with a method that changes the layer's weights."""

    def __init__(self):
        import keras

        self.dense = keras.layers.Dense(1024, name="dense")
        self.dense.build((None, probe.REUSE_BYTES // 4096 + 1))

    def nudge(self, amount):
        self.dense.kernel.assign(self.dense.kernel + amount)
        return amount


def counting_link(namespace):
    """A link to an agent over the JSON wire, and the list of (request, answer length) it carried."""
    agent, carried = probe.Agent(namespace), []

    def send(request):
        answer = agent.handle(request)
        carried.append((json.loads(request), len(answer)))
        return answer
    return Link(send), carried


def test_a_copy_crosses_again_only_when_the_learners_object_changed():
    """After a call, the judge re-reads a layer with the fingerprint of its copy; the agent answers
    "unchanged" (a few bytes) unless the call changed it, then the whole new copy crosses."""
    holder = Holder()
    link, carried = counting_link({"holder": holder})
    handle = link.bind("holder")
    first = handle.dense
    handle.nudge(0)  # a call: the learner's objects may have changed
    assert handle.dense is first  # unchanged: the judge's copy is reused
    assert carried[-1][0]["known"] == probe.fingerprint(holder.dense) and carried[-1][1] < 200
    handle.nudge(1.0)
    changed = handle.dense
    assert changed is not first and carried[-1][1] > probe.REUSE_BYTES
    np.testing.assert_allclose(changed.get_weights()[0], holder.dense.get_weights()[0])


def test_a_copy_the_judge_changed_is_read_afresh():
    holder = Holder()
    link, carried = counting_link({"holder": holder})
    handle = link.bind("holder")
    copy = handle.dense
    copy.kernel.assign(copy.kernel * 0 + 5)  # the check set other weights into its copy
    handle.nudge(0)
    again = handle.dense
    assert "known" not in carried[-1][0] and again is not copy
    np.testing.assert_allclose(again.get_weights()[0], holder.dense.get_weights()[0])


def test_a_forged_unchanged_answer_is_not_taken_for_a_copy():
    """"unchanged" counts only as the answer to a request naming that very fingerprint."""
    holder = Holder()
    agent = probe.Agent({"holder": holder})

    def send(request):
        if json.loads(request).get("name") == "dense":
            return json.dumps({"value": {"unchanged": "0" * 64}})
        return agent.handle(request)
    handle = Link(send).bind("holder")
    with pytest.raises(ProbeFailed):
        handle.dense


def test_one_object_keeps_one_handle_and_missing_attributes_take_one_request():
    from course_checks.remote import missing_attributes

    holder = Holder()
    link, carried = counting_link({"holder": holder, "again": holder})
    first, second = link.bind("holder"), link.bind("again")
    assert object.__getattribute__(first, "_id") == object.__getattribute__(second, "_id")
    before = len(carried)
    assert missing_attributes(first, ("dense", "nudge", "fpn", "cls_head")) == ["fpn", "cls_head"]
    assert len(carried) == before + 1
    assert missing_attributes(holder, ("dense", "fpn")) == ["fpn"]


def test_a_large_seed_crosses_a_large_size_does_not():
    import keras

    head = keras.Sequential([keras.Input((None, None, 4)), keras.layers.Conv2D(
        2, 3, padding="same", kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=4_000_000_000))])
    copy = probe.decode(json.loads(json.dumps(probe.encode(head))))
    np.testing.assert_array_equal(copy.get_weights()[0], head.get_weights()[0])


def test_an_object_array_never_crosses():
    text = probe._array_bytes(np.array([1, 2]))
    assert probe.decode({"array": text}).tolist() == [1, 2]
    import base64
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(Exception):
        probe.decode({"array": base64.b64encode(buffer.getvalue()).decode()})


def test_the_learners_errors_keep_their_class_name():
    def broken():
        raise NotImplementedError("not yet")

    class InvalidArgumentError(Exception):
        pass

    def crashes():
        raise InvalidArgumentError("Incompatible shapes: [2,4] vs. [2,8]")

    remote_broken, remote_crashes = handles(broken, crashes)
    with pytest.raises(NotImplementedError):
        remote_broken()
    with pytest.raises(Exception) as error:
        remote_crashes()
    assert type(error.value).__name__ == "InvalidArgumentError" and "Incompatible shapes" in str(error.value)
    assert isinstance(remote_broken, Remote) and repr(remote_broken).startswith("<the learner's")


def test_a_check_cell_is_judged_here_with_the_kernels_objects_as_handles():
    """``autograder.grading.judge.Judge`` on a check cell's source: checks and modules of its own, handles for the
    rest."""
    from autograder.grading.judge import Judge, free_names, split_setup

    import numpy as np_module

    def add(a, b):
        return a + b

    agent = probe.Agent({"add": add, "np": np_module, "data": [1, 2]})
    def TEST_ADD(add):
        assert add(2, 3) == 5, "add(2, 3) should be 5"
        print("TEST_ADD passed")

    checks = type("checks", (), {"TEST_ADD": staticmethod(TEST_ADD)})
    judge = Judge(checks, agent.handle)
    outputs, passed = judge.run("TEST_ADD(add)\nassert np.allclose(add(np.ones(2), data), [2, 3])")
    assert passed and outputs[0].text == "TEST_ADD passed\n"
    outputs, passed = judge.run("assert add(-1, 1) == 1, 'add(-1, 1) should be 1'")
    assert not passed and outputs[-1].ename == "AssertionError" and "should be 1" in outputs[-1].evalue
    outputs, passed = judge.run("undefined_thing(1)")
    assert not passed and outputs[-1].ename == "NameError"
    assert sorted(free_names("x = f(y)\nfor i in z: g(i, x)")) == ["f", "g", "y", "z"]
    assert split_setup("model = M(3)\nTEST_X(model)", r"TEST_\w+") == ("model = M(3)", "TEST_X(model)")


def test_a_kernel_that_dies_during_a_probe_is_reported_as_dead_even_through_call_learner():
    """``call_learner`` turns the learner's errors into messages; the kernel's death must not become one."""
    from nbclient.exceptions import DeadKernelError

    from autograder.grading.judge import Judge
    from course_checks.harness import call_learner

    def send(request):
        if '"call"' in request:
            raise DeadKernelError("Kernel died")
        return probe.Agent({"add": lambda a, b: a + b}).handle(request)

    checks = type("checks", (), {"TEST_ADD": staticmethod(lambda add: call_learner("add(2, 3)", add, 2, 3))})
    with pytest.raises(DeadKernelError):
        Judge(checks, send).run("TEST_ADD(add)")


def test_an_answer_is_read_back_from_its_repr_exactly():
    """The kernel shows the agent's answer as ``repr``; the grader's fast inverse agrees with Python's own
    on strings of every kind (quotes, backslashes, control and non-ASCII characters) and refuses non-strings."""
    import ast

    from autograder.grading.execute import string_from_repr

    rng = np.random.default_rng(20261207)
    alphabet = list("ab'\"\\\n\t\x00 {}[]:,é€\U0001F600") + ["\ud800"[:0]]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 12))))
        assert string_from_repr(repr(text)) == text == ast.literal_eval(repr(text))
    for not_a_string in ("1", "[1]", "None", "b'x'", "'a' + 'b'"):
        with pytest.raises((ValueError, SyntaxError)):
            string_from_repr(not_a_string)
