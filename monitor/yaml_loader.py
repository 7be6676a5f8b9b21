"""One hardened YAML reader for slamon's configuration files (contracts, alerting config).

Hostile input is refused quickly and in bounded memory, with the file and line in the message: files over
`MAX_YAML_BYTES`, bytes that are not UTF-8, characters YAML forbids, python tags (a `yaml.SafeLoader` subclass:
no tag runs), nesting deeper than `MAX_YAML_DEPTH`, aliases that expand to more than `MAX_YAML_NODES` nodes
("billion laughs"), scalars the safe constructors cannot build (`!!timestamp x`, 2026-02-30) and a key given
twice in one mapping (PyYAML would keep the last silently; keys merged in with `<<:` may be overridden).

`explain` turns a pydantic `ValidationError` into one line per error, `file:line: field.path: message`, the line
found by walking the composed YAML nodes along the error's location. `check_version` reads the top-level
`version:` (absent: 1) and refuses one slamon does not know.

Each caller passes the error class to raise (ContractError, AlertingError): both are `SlamonError`s.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.errors import SlamonError

MAX_YAML_BYTES = 16 * 1024 * 1024
MAX_YAML_DEPTH = 64  # real contracts nest about 8 levels; PyYAML composes recursively
MAX_YAML_NODES = 500_000  # nodes after expanding aliases and merges (examples/contracts.yaml: 570)
MAX_EXPLAINED_ERRORS = 20
SUPPORTED_VERSIONS = (1,)

ErrorType = type[SlamonError]


def read_text(path: str | Path, error: ErrorType) -> str:
    """The UTF-8 text of a configuration file, at most MAX_YAML_BYTES; `error` names the path (and the line of
    a byte that is not UTF-8)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise error(f"{path}: cannot read: it is a directory")
        if path.stat().st_size > MAX_YAML_BYTES:
            raise error(f"{path}: larger than {MAX_YAML_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8: byte {data[err.start]:#04x}") from None


class SafeYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while scanning and composing (PyYAML recurses per level), turns a
    scalar the safe constructors cannot build (a 5000-digit int, 2026-02-30, `!!timestamp x`) into a YAML error
    with its line, and refuses a key given twice in one mapping."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, TokenClass):
        # The scanner's simple-key bookkeeping is quadratic in open flow collections: stop it early.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                            self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as err:  # the safe constructors assume well-formed scalars (`!!timestamp x`)
            what = short(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {what}: {err}",
                                                    node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self._refuse_duplicate_keys(node)
        return super().construct_mapping(node, deep)

    def _refuse_duplicate_keys(self, node: yaml.MappingNode) -> None:
        """Keys written in this mapping (not those merged in with `<<:`, which the mapping may override)."""
        seen: dict[Any, yaml.Node] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the mapping constructor reports it
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {short(key)} is given twice (first on line {first.start_mark.line + 1})",
                    key_node.start_mark)


def load(text: str, source: str, error: ErrorType) -> tuple[Any, yaml.Node | None]:
    """The data of one YAML document and its composed root node (for `explain`), or `error` with the line."""
    loader = None
    try:
        loader = SafeYamlLoader(text)  # checks every character is printable
        root = loader.get_single_node()
        check_expansion(root, source, error)
        data = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as err:  # no mark: only a character position
        line = text[: err.position].count("\n") + 1
        raise error(f"{source}:{line}: not valid YAML: character {err.character:#06x} is not allowed") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"{source}{where}: not valid YAML: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, root


def check_version(data: dict, root: yaml.Node | None, source: str, error: ErrorType,
                  supported: tuple[int, ...] = SUPPORTED_VERSIONS) -> int:
    """The file format version: the top-level `version:`, 1 when absent; an unknown one is refused."""
    if "version" not in data:
        return 1
    value = data["version"]
    if type(value) is int and value in supported:
        return value
    _node, line = locate(root, ["version"])
    known = ", ".join(map(str, supported))
    raise error(f"{source}:{line}: version: unsupported version {short(value)} (supported: {known})",
                hint=f"write `version: {supported[-1]}`, or upgrade slamon if the file is newer")


def check_expansion(root: yaml.Node | None, source: str, error: ErrorType) -> None:
    """Refuse aliases (and merge keys) that expand to more than MAX_YAML_NODES nodes or MAX_YAML_DEPTH levels
    (aliases nest anchored subtrees), naming the smallest subtree that is too large."""
    if root is None:
        return
    sizes = _expanded_sizes(root)
    if sizes[id(root)] <= MAX_YAML_NODES:
        return
    node, path, seen = root, [], {id(root)}
    while True:
        big = [(key, c) for key, c in _labelled_children(node) if sizes[id(c)] > MAX_YAML_NODES]
        if not big or id(big[0][1]) in seen:  # the smallest, or a node that contains itself
            break
        seen.add(id(big[0][1]))
        key, node = big[0]
        path.append(key)
    raise error(f"{source}:{node.start_mark.line + 1}: {'.'.join(path) or '(top)'}: YAML aliases expand "
                f"to more than {MAX_YAML_NODES} nodes or {MAX_YAML_DEPTH} levels (an alias bomb?)")


def _expanded_sizes(root: yaml.Node) -> dict[int, int]:
    """id(node) -> number of nodes once aliases are expanded (capped just above the limit; a node nested more
    than MAX_YAML_DEPTH levels counts as over the limit). Iterative and memoized per node object, so it is
    linear in the composed graph however the aliases nest. A node that contains itself (`&a [*a]`) is over."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in entered:  # reached again below itself: infinite expansion
                sizes[id(node)], depths[id(node)] = MAX_YAML_NODES + 1, MAX_YAML_DEPTH + 1
                continue
            entered.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        depth = 1 + max((depths[id(c)] for c in children), default=0)
        size = 1 + sum(sizes[id(c)] for c in children)
        depths[id(node)] = depth
        sizes[id(node)] = MAX_YAML_NODES + 1 if depth > MAX_YAML_DEPTH else min(size, MAX_YAML_NODES + 1)
    return sizes


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _labelled_children(node: yaml.Node) -> list[tuple[str, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        return [(str(k.value) if isinstance(k, yaml.ScalarNode) else "[key]", v) for k, v in node.value]
    if isinstance(node, yaml.SequenceNode):
        return [(str(i), v) for i, v in enumerate(node.value)]
    return []


def explain(err: ValidationError, root: yaml.Node | None, source: str,
            skip: Callable[[Any], bool] = lambda part: False, prefix: tuple[Any, ...] = ()) -> str:
    """One line per validation error: `source:line: field.path: message (got value)`. `skip` drops location
    parts that are not fields (union tags); `prefix` is the path of the validated data in the file."""
    lines = []
    errors = err.errors(include_url=False)
    for e in errors[:MAX_EXPLAINED_ERRORS]:
        loc = [p for p in e["loc"] if not skip(p)]
        _node, line = locate(root, [*prefix, *loc])
        path = ".".join(str(p) for p in loc) or "(top)"
        got = "" if e["type"] in ("missing", "value_error") else f" (got {short(e.get('input'))})"
        msg = "".join(c if c.isprintable() else repr(c)[1:-1] for c in e["msg"])  # quotes user text: one line
        lines.append(f"{source}:{line}: {path}: {msg}{got}")
    if len(errors) > MAX_EXPLAINED_ERRORS:
        lines.append(f"{source}: ... and {len(errors) - MAX_EXPLAINED_ERRORS} more errors")
    return "\n".join(lines)


def locate(node: yaml.Node | None, loc: list[Any]) -> tuple[yaml.Node | None, int]:
    """Deepest YAML node along `loc`, and its 1-based line."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return node, line


_REPR = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
_REPR.maxlevel = 3
_REPR.maxtuple = _REPR.maxlist = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40


def short(value: Any) -> str:
    """A bounded repr: the input may be a huge or deeply shared structure (reprlib stops early)."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
