"""Edits to YAML text located with the node tree: add a key, fill a path, add a top-level block.

Each helper returns `Edit`s or None when the place cannot be edited without rewriting what the
user wrote (a flow collection, an alias, a scalar where a mapping is needed); the pass then
reports instead of fixing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from e2i_fix import render
from e2i_fix.fix import Edit
from e2i_fix.yamldoc import ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode


def append_entry(doc: ComposeDoc, mapping: MappingNode, key: str, value: Any, after: int) -> Edit | None:
    """Add `key: value` as the last entry of a block mapping (after its last content line).

    `after` is where the mapping's place starts (the end of its key); it tells an alias use.
    """
    if mapping.flow_style or not mapping.value or doc.is_alias(mapping, after):
        return None
    column = mapping.value[0][0].start_mark.column
    end = doc.content_end(mapping, after)
    last = doc.line_after(end)
    pos = past_trailing_comments(doc, last, column)
    text = render.entry(key, value, column, doc.style)
    if pos == len(doc.text) and not doc.text.endswith("\n"):
        if pos == last and _ends_in_clipped_block_scalar(doc, mapping):
            # `key: |` ending the file keeps no line break; any line after it would give it
            # one and change its value. The new entry goes before the last key instead.
            start = doc.line_start(mapping.value[-1][0].start_mark.index)
            return Edit(doc.path, start, start, text)
        # No final newline: keep it that way, the new entry becomes the last line.
        return Edit(doc.path, pos, pos, "\n" + text.removesuffix("\n"))
    return Edit(doc.path, pos, pos, text)


def past_trailing_comments(doc: ComposeDoc, pos: int, column: int) -> int:
    """`pos`, the start of the line after a block's last content line, moved past the comment
    lines that still belong to the block: those indented to its own column or deeper (a
    commented-out entry, a note closing an `environment:`), with the blank lines between them.
    A comment less indented heads what comes next, and blank lines after the last comment
    separate the block from it: a new entry goes before both."""
    text = doc.text
    end = len(text)
    got = i = pos
    while i < end:
        nl = text.find("\n", i)
        stop = end if nl < 0 else nl + 1
        body = text[i:stop].lstrip(" \t")
        if body.startswith("#"):
            if stop - i - len(body) < column:
                break
            got = stop
        elif body.strip():
            break
        i = stop
    return got


def _ends_in_clipped_block_scalar(doc: ComposeDoc, node: Node) -> bool:
    """Whether the last thing in `node` is a `|` or `>` scalar without the `-` indicator."""
    while True:
        if isinstance(node, MappingNode) and node.value and not node.flow_style:
            node = node.value[-1][1]
        elif isinstance(node, SequenceNode) and node.value and not node.flow_style:
            node = node.value[-1]
        else:
            break
    if not (isinstance(node, ScalarNode) and node.style in ("|", ">")):
        return False
    start = node.start_mark.index
    header = doc.text[start : doc.text.find("\n", start) % (len(doc.text) + 1)].split("#", 1)[0]
    return "-" not in header



def ensure(doc: ComposeDoc, mapping: MappingNode, path: tuple[str, ...], value: Any, after: int) -> list[Edit] | None:
    """Make `mapping[path[0]]...[path[-1]]` exist with `value`, adding only what is missing.

    A missing key is added with the rest of the path nested under it; an existing empty
    value (`deploy:`) is filled in. Returns None where the text cannot be edited safely, and
    [] when the path already exists.
    """
    node: Node = mapping
    at = after
    for i, key in enumerate(path):
        if not isinstance(node, MappingNode) or node.flow_style or doc.is_alias(node, at):
            return None
        kv = doc.get(node, key)
        rest: Any = value
        for k in reversed(path[i + 1 :]):
            rest = {k: rest}
        if kv is None:
            edit = append_entry(doc, node, key, rest, at)
            return None if edit is None else [edit]
        k_node, v_node = kv
        key_end = doc.key_end(k_node)
        if isinstance(v_node, ScalarNode) and v_node.value in ("", "~", "null", "Null", "NULL") and not v_node.style:
            if doc.is_alias(v_node, key_end):
                return None
            return _fill_empty(doc, k_node, v_node, key_end, rest)
        node, at = v_node, key_end
    return []


def _fill_empty(doc: ComposeDoc, key: ScalarNode, empty: ScalarNode, key_end: int, value: Any) -> list[Edit] | None:
    column = key.start_mark.column + doc.style.indent
    edits = []
    if empty.value:  # an explicit `null` or `~` goes; the block below takes its place
        edits.append(Edit(doc.path, empty.start_mark.index, empty.end_mark.index, ""))
    if not isinstance(value, Mapping):
        return None
    body = render.block(value, column, doc.style)
    pos = doc.line_after(key_end)
    if pos == len(doc.text) and not doc.text.endswith("\n"):
        body = "\n" + body.removesuffix("\n")
    edits.append(Edit(doc.path, pos, pos, body))
    return edits


def top_level_block(doc: ComposeDoc, key: str, value: Any, before: str = "services") -> Edit:
    """Add a top-level entry (an `x-` anchor block) before `before`, its comments kept with it."""
    column = doc.root.value[0][0].start_mark.column
    return top_level_text(doc, render.entry(key, value, column, doc.style), before)


def top_level_text(doc: ComposeDoc, text: str, before: str = "services") -> Edit:
    """Place a rendered top-level entry (lines ending in a newline) before `before`, spaced
    from its neighbours as the file spaces its top-level keys."""
    kv = doc.get(doc.root, before)
    if kv is None:  # the last entry, as `append_entry` places one
        pos = doc.line_after(doc.content_end(doc.root, 0))
        if pos == len(doc.text) and not doc.text.endswith("\n"):
            if _ends_in_clipped_block_scalar(doc, doc.root):
                start = doc.line_start(doc.root.value[-1][0].start_mark.index)
                return Edit(doc.path, start, start, text)
            return Edit(doc.path, pos, pos, "\n" + text.removesuffix("\n"))
        return Edit(doc.path, pos, pos, text)
    own = pos = doc.line_start(kv[0].start_mark.index)
    # Comment lines directly above the key describe it: insert above them. Unless they open
    # the file above `services:`: then they are its header (a licence, how to run it), which
    # stays first (above an `x-` block, they are that block's).
    while pos > 0:
        prev = doc.line_start(pos - 1)
        if doc.text[prev:pos].lstrip().startswith("#"):
            pos = prev
        else:
            break
    if before == "services" and doc.text[:pos].strip() in ("", "---"):
        pos = own
    gap = "\n" if top_level_gap(doc) else ""
    before = doc.text[doc.line_start(pos - 1) : pos].strip() if pos > 0 else ""
    if before and before != "---":
        text = gap + text  # keep the new block apart from what precedes it, as the file does
    return Edit(doc.path, pos, pos, text + gap)


def top_level_gap(doc: ComposeDoc) -> bool:
    """Whether the file puts a blank line between its top-level entries: the majority over the
    entries after the first (a file with one top-level key: yes, the common style)."""
    text = doc.text
    blank = tight = 0
    for k, _ in doc.root.value[1:]:
        pos = doc.line_start(k.start_mark.index)
        while pos > 0:  # past the comment lines that head the entry
            prev = doc.line_start(pos - 1)
            line = text[prev:pos].strip()
            if line.startswith("#"):
                pos = prev
                continue
            if line:
                tight += 1
            else:
                blank += 1
            break
    return blank >= tight


def holding_block(doc: ComposeDoc, node: Node) -> tuple[tuple[str, ...], ...]:
    """The top-level key other than `services` whose value holds `node` (an `x-` block), as the
    model path an edit of `node` also changes; () when none does."""
    start = node.start_mark.index
    for k, v in doc.root.value:
        if isinstance(k, ScalarNode) and k.value != "services" and v.start_mark.index <= start < v.end_mark.index:
            return ((k.value,),)
    return ()


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`... the first that `taken` does not hold."""
    if name not in taken:
        return name
    i = 2
    while f"{name}-{i}" in taken:
        i += 1
    return f"{name}-{i}"


def commented_key(doc: ComposeDoc, mapping: MappingNode, key: str) -> int | None:
    """The line of a `# key:` the mapping holds commented out at its own keys' indentation
    (`# security_opt: ["label:disable"]`, which the project's docs tell some users to
    uncomment), if it holds one: a key added beside it would make that line a second `key:`
    once uncommented, which Compose refuses."""
    if not mapping.value or doc.text.find("#", mapping.start_mark.index, mapping.end_mark.index) < 0:
        return None  # most services hold no comment at all
    col = mapping.value[0][0].start_mark.column
    rx = re.compile(rf'^ {{{col}}}#[ \t]*"?{re.escape(key)}"?:', re.MULTILINE)
    m = rx.search(doc.text, mapping.start_mark.index, mapping.end_mark.index)
    return doc.text.count("\n", 0, m.start()) + 1 if m else None
