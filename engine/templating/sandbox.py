"""The environment node-config templates run in: Jinja2's immutable sandbox, bounded in size and work.

Jinja2's ``ImmutableSandboxedEnvironment`` keeps templates away from Python internals (attributes
starting with ``_``, function globals, methods that mutate lists and dicts), but not from
exhausting the machine: ``'a' * 10**9``, ``'x'|center(10**9)``, ``'%999999999s' % 1``, ``2**2**40``
or three nested loops over ``range(100000)`` run as long and grow as large as they like. A template
comes from whoever may edit a workflow, and runs in a worker or inside a run's transaction (inline nodes,
edge conditions), so this environment also bounds:

- size: no operator (``*``, ``+``, ``~``, ``%``), string method, ``str.format`` or filter may build a
  string or list longer than ``MAX_SIZE`` characters or items, checked *before* it is built; the
  rendered text of a template is bounded the same way;
- numbers: ``*`` and ``**`` on integers stop at ``MAX_INT_BITS`` bits;
- work: ``MAX_STEPS`` loop iterations, calls and operators, ``MAX_TOTAL`` characters or items built
  in all, and ``TIME_LIMIT_S`` seconds per ``budget()`` (one ``templating.render`` call);
- data: what a template outputs or turns into text must be JSON data (strings, numbers, booleans,
  null, lists, objects), never a function, class or other Python object, so no repr of one (with
  its memory address) ever reaches a step's config, output or error.

``lipsum`` is not offered (it only makes text, as much as asked). A template that breaks a bound
raises ``TemplateLimitExceeded``; one that outputs something other than data raises
``NotJsonData``. Both are ``jinja2.exceptions.SecurityError``s, which ``templating.render`` reports
as a failed template naming the config path.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import time
import types
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain

from jinja2 import nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

MAX_SIZE = 4_000_000  # characters (or list items) one operation may build
MAX_TOTAL = 16_000_000  # characters (or items) all operations of one render may build together
MAX_INT_BITS = 10_000  # about 3000 decimal digits (Python prints at most 4300)
MAX_STEPS = 1_000_000  # loop iterations, calls and operators per render
TIME_LIMIT_S = 2.0  # seconds per render
MEASURE_CHECK_EVERY = 8192  # items a measure walks between two looks at the clock


class TemplateLimitExceeded(SecurityError):
    """A template tried to build too much, or to work too long."""


class NotJsonData(SecurityError):
    """A template tried to output (or turn into text) something that is not JSON data."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    built: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("weft_template_budget", default=None)


@contextlib.contextmanager
def budget():
    """Bound the work of every template evaluated inside (nested uses share the outermost budget)."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget(deadline=time.monotonic() + TIME_LIMIT_S))
    try:
        yield
    finally:
        _budget.reset(token)


def _step(n: int = 1) -> None:
    current = _budget.get()
    if current is None:
        return
    current.steps += n
    if current.steps > MAX_STEPS:
        raise TemplateLimitExceeded(f"template did more than {MAX_STEPS} loop iterations, calls and operations")
    _deadline_check()


def _deadline_check() -> None:
    current = _budget.get()
    if current is not None and time.monotonic() > current.deadline:
        raise TemplateLimitExceeded(f"template ran longer than {TIME_LIMIT_S:g} s")


def _check_size(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise TemplateLimitExceeded(f"{what} would be {size} characters or items long; a template may build at "
                                    f"most {MAX_SIZE}")


def _charge(size: int) -> None:
    current = _budget.get()
    if current is None:
        return
    current.built += size
    if current.built > MAX_TOTAL:
        raise TemplateLimitExceeded(f"template built more than {MAX_TOTAL} characters or items in all")


def _charge_value(value) -> None:
    if isinstance(value, (str, bytes, list, tuple, dict)):
        _charge(len(value))


# -- measuring values without building them -------------------------------------------------------

_SCALARS = (bool, int, float, type(None))


def measure(value, *, limit: int = MAX_SIZE, data_only: bool = True) -> int:
    """Roughly how many characters ``str(value)`` would take, counting no further than ``limit``.

    Walks the value instead of printing it, so a list holding the same big string a million times
    is measured, not printed. With ``data_only``, anything but JSON data raises NotJsonData. Inside a
    render, the render's time limit holds here too (a walk of a million items takes seconds on a busy
    machine).
    """
    total = 0
    stack = [value]
    walked = 0
    while stack:
        walked += 1
        if not walked % MEASURE_CHECK_EVERY:
            _deadline_check()
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, (list, tuple)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Undefined):
            item._fail_with_undefined_error()
        elif data_only:
            raise NotJsonData(f"a template cannot output or print a {_kind(item)}; only JSON data "
                              "(text, numbers, true/false, null, lists and objects)")
        else:
            total += 64
        if total > limit:
            break
    return total


def _kind(value) -> str:
    if isinstance(value, types.GeneratorType) or type(value).__name__ == "generator":
        return "generator (add |list)"
    if isinstance(value, type):
        return "type"
    if callable(value):
        return "function"
    return type(value).__name__


def to_text(value) -> str:
    """``str(value)`` for JSON data of bounded size; anything else is refused before printing.

    Counts against the budget even when ``value`` is already text: a ``{% set %}`` block or a macro
    collects what it prints, so printing one big string a thousand times would otherwise be free.
    """
    if isinstance(value, str):
        _charge(len(value))
        return value
    size = measure(value)
    _check_size(size, "the text of this value")
    _charge(size)
    return str(value)


# -- printf-style formatting ("%s" % x, |format) ------------------------------------------------

_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _check_printf(fmt: str, args) -> None:
    specs, widest = 0, 0
    for match in _PRINTF.finditer(fmt):
        width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        if "*" in (width, precision):
            raise TemplateLimitExceeded("'*' widths in % formatting are not supported in templates")
        _step()
        specs += 1
        widest = max(widest, int(width or 0), int(precision or 0))
    _check_size(widest, "a % format width")
    if isinstance(args, dict):
        values = list(args.values())
    elif isinstance(args, tuple):
        values = list(args)
    else:
        values = [args]
    _step(len(values))
    longest = max((measure(v) for v in values), default=0)
    _check_size(len(fmt) + specs * (widest + longest), "the result of % formatting")


# -- str.format ----------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


class _BoundedFormatting:
    """Counts what ``str.format`` builds, field by field, and refuses oversized widths and non-data."""

    def vformat(self, format_string, args, kwargs):
        self._built = len(format_string)
        _check_size(self._built, "a format string")
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value, format_spec):
        _step()
        widest = max((int(d) for d in _DIGITS.findall(format_spec)), default=0)
        _check_size(widest, "a format width")
        self._built += max(widest, measure(value))
        _check_size(self._built, "the result of str.format")
        return super().format_field(value, format_spec)


class _Formatter(_BoundedFormatting, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFormatting, SandboxedEscapeFormatter):
    pass


# -- methods of str, bytes and int -----------------------------------------------------------------


def _check_method(owner, name: str, args: tuple, kwargs: dict) -> tuple:
    """Refuse a call of a str/bytes/int method that would build too much; returns the args to call with."""
    for arg in chain(args, kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool) and arg > MAX_SIZE:
            raise TemplateLimitExceeded(f"argument {arg} of .{name}() is larger than {MAX_SIZE}")
    if isinstance(owner, int):
        return args
    length = len(owner)
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        hits = length + 1 if len(old) == 0 else owner.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _check_size(length + hits * max(len(new) - len(old), 0), "the result of .replace()")
    elif name == "join" and args:
        parts = list(args[0])
        _step(len(parts))
        size = sum(len(p) if isinstance(p, (str, bytes)) else 0 for p in parts) + length * max(len(parts) - 1, 0)
        _check_size(size, "the result of .join()")
        return (parts, *args[1:])
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count("\t" if isinstance(owner, str) else b"\t")
        _check_size(length + tabs * max(int(tabsize), 0), "the result of .expandtabs()")
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
        _check_size(length * longest, "the result of .translate()")
    return args


# -- filters ---------------------------------------------------------------------------------------


def _pre_join(value, d="", attribute=None):
    items = list(value)
    _step(len(items))
    size = len(str(d)) * max(len(items) - 1, 0) + sum(measure(item) for item in items)
    _check_size(size, "the result of |join")
    return items


def _pre_replace(s, old, new, count=None):
    text = str(s) if not isinstance(s, str) else s
    hits = len(text) + 1 if len(str(old)) == 0 else text.count(str(old))
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _check_size(len(text) + hits * max(len(str(new)) - len(str(old)), 0), "the result of |replace")
    return s


def _pre_indent(s, width=4, first=False, blank=False):
    text = to_text(s)
    pad = len(width) if isinstance(width, str) else int(width)
    _check_size(len(text) + (text.count("\n") + 1) * max(pad, 0), "the result of |indent")
    return s


def _pre_format(value, *args, **kwargs):
    _check_printf(to_text(value), kwargs or args)
    return value


def _pre_wordwrap(s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    text = to_text(s)
    pieces = len(text) // max(int(width), 1) + text.count("\n") + 1
    _check_size(len(text) + pieces * len(wrapstring or "\n"), "the result of |wordwrap")
    return s


def _pre_text(factor: int):
    def check(value, *args, **kwargs):
        _check_size(measure(value) * factor, "the text of this value")
        return value

    return check


_PRECHECKS = {
    "join": _pre_join,
    "replace": _pre_replace,
    "indent": _pre_indent,
    "format": _pre_format,
    "wordwrap": _pre_wordwrap,
    "string": _pre_text(1),
    "pprint": _pre_text(2),
    "tojson": _pre_text(2),
    "escape": _pre_text(6),
    "e": _pre_text(6),
    "forceescape": _pre_text(6),
    "urlencode": _pre_text(3),
}


def _guard_filter(name: str, fn):
    """``fn`` with its int arguments, its result size and its work bounded (and a precheck, for some)."""
    passes_arg = getattr(fn, "jinja_pass_arg", None) is not None
    precheck = _PRECHECKS.get(name)

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        _step()
        lead, rest = (args[:1], args[1:]) if passes_arg else ((), args)
        for arg in chain(rest[1:], kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and arg > MAX_SIZE:
                raise TemplateLimitExceeded(f"argument {arg} of |{name} is larger than {MAX_SIZE}")
        if precheck is not None and rest:
            rest = (precheck(*rest, **kwargs), *rest[1:])
        result = fn(*lead, *rest, **kwargs)
        if isinstance(result, types.GeneratorType):
            return _stepping(result)
        if isinstance(result, (str, list, tuple)):
            _check_size(len(result), f"the result of |{name}")
        _charge_value(result)
        return result

    return guarded


def _linear_sum(original):
    """|sum, in linear time when summing lists (Python's sum() of lists copies quadratically)."""

    @functools.wraps(original)
    def linear_sum(environment, iterable, attribute=None, start=0):
        if not isinstance(start, (list, tuple)):
            return original(environment, iterable, attribute, start)
        if attribute is not None:
            iterable = map(make_attrgetter(environment, attribute), iterable)
        parts = list(iterable)
        _step(len(parts))
        for part in parts:
            if type(part) is not type(start):
                raise TypeError(f'can only concatenate {type(start).__name__} (not "{type(part).__name__}") to '
                                f"{type(start).__name__}")
        _check_size(len(start) + sum(len(p) for p in parts), "the result of |sum")
        return type(start)(chain(start, *parts))

    return linear_sum


def _stepping(iterable):
    for item in iterable:
        _step()
        yield item


@pass_context
def _loop_guard(context, iterable):
    """Every ``{% for %}`` iterates through this: each iteration is a step of the budget."""
    return _stepping(iterable)


@pass_context
def _literal(context, text: str) -> str:
    """Literal template text: it too counts against the budget (a loop repeats it)."""
    _charge(len(text))
    return text


def _concat(parts):
    """``a ~ b``: text of bounded size, from data only."""
    texts = [to_text(p) for p in parts]
    _check_size(sum(len(t) for t in texts), "the result of ~")
    result = "".join(texts)
    _charge(len(result))
    return result


class _Guard(NodeTransformer):
    """Rewrites a parsed template: loops iterate through ``_loop_guard``, ``~`` goes through ``_concat``, and
    literal text through ``_literal``."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "weft_loop_guard", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        node = self.generic_visit(node)
        node.nodes = [nodes.Filter(nodes.Const(child.data, lineno=child.lineno), "weft_literal", [], [], None, None,
                                   lineno=child.lineno) if isinstance(child, nodes.TemplateData) else child
                      for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return nodes.Filter(nodes.List(node.nodes, lineno=node.lineno), "weft_concat", [], [], None, None,
                            lineno=node.lineno)


def _finalize(value):
    """What ``{{ ... }}`` prints: the text of JSON data only."""
    return to_text(value)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with bounded size and work (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs):
        super().__init__(finalize=_finalize, **kwargs)
        self.globals.pop("lipsum", None)
        for name, fn in list(self.filters.items()):
            self.filters[name] = _guard_filter(name, _linear_sum(fn) if name == "sum" else fn)
        self.filters["weft_loop_guard"] = _loop_guard
        self.filters["weft_concat"] = _concat
        self.filters["weft_literal"] = _literal

    def _generate(self, source, name, filename, defer_init=False):
        return super()._generate(_Guard().visit(source), name, filename, defer_init=defer_init)

    def call_binop(self, context, operator, left, right):
        _step()
        if operator == "*":
            _check_multiply(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _check_size(len(left) + len(right), "the result of +")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        result = self.binop_table[operator](left, right)
        _charge_value(result)
        return result

    def call(__self, __context, __obj, *args, **kwargs):  # Jinja2's signature
        _step()
        owner = getattr(__obj, "__self__", None)
        # str/bytes/int methods, and Markup's (Python-level wrappers of the same str methods).
        if isinstance(__obj, (types.BuiltinMethodType, types.MethodType)) and isinstance(owner, (str, bytes, int)):
            args = _check_method(owner, __obj.__name__, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, (str, bytes, list, tuple)):
            _check_size(len(result), "the result of this call")
        _charge_value(result)
        return result

    def wrap_str_format(self, value):
        """``str.format``/``format_map`` through a formatter that bounds what it builds (see _BoundedFormatting)."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or \
                value.__name__ not in ("format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        formatter = _EscapeFormatter(self, escape=owner.escape) if isinstance(owner, Markup) else _Formatter(self)
        is_map = value.__name__ == "format_map"

        def wrapper(*args, **kwargs):
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(wrapper, value)


def _check_multiply(left, right) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
            _check_size(len(seq) * max(times, 0), "the result of *")
            return
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimitExceeded(f"the product would have more than {MAX_INT_BITS} bits")


def _check_power(left, right) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateLimitExceeded(f"the power would have more than {MAX_INT_BITS} bits")
