"""Discord's request-body rules: message / embed / component limits and command schema checks.

Every check raises :class:`ApiError` carrying the status, JSON error code and the nested
``errors`` object in the same shape Discord uses::

    {"code": 50035, "message": "Invalid Form Body",
     "errors": {"embeds": {"0": {"title": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", ...}]}}}}}
"""

from __future__ import annotations

import logging
import re
from typing import Any

from . import constants as C

_log = logging.getLogger(__name__)

JSON = dict[str, Any]
Path = tuple[str | int, ...]

COMMAND_NAME_RE = re.compile(r"^[-_\w]{1,32}$")


class ApiError(Exception):
    """An error reply of the REST API (status + Discord JSON error body)."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> JSON:
        """The JSON body Discord would send."""
        data: JSON = {"message": self.message, "code": self.code}
        if self.errors:
            data["errors"] = self.errors
        return data


class FormErrors:
    """Collects field errors and turns them into Discord's nested ``errors`` object."""

    def __init__(self, prefix: Path = ()) -> None:
        self.prefix = prefix
        self.items: list[tuple[Path, str, str]] = []

    def add(self, path: Path, code: str, message: str) -> None:
        """Record one error at ``path`` (relative to the prefix)."""
        self.items.append((self.prefix + tuple(path), code, message))

    def max_length(self, path: Path, value: Any, limit: int) -> None:
        """Check ``len(value) <= limit`` (for strings and lists)."""
        if value is not None and len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def bad_length(self, path: Path, value: Any, low: int, high: int) -> None:
        """Check ``low <= len(value) <= high`` (missing counts as length 0)."""
        size = len(value) if value is not None else 0
        if not low <= size <= high:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def nested(self) -> JSON:
        """The Discord ``errors`` object."""
        root: JSON = {}
        for path, code, message in self.items:
            node = root
            for part in path:
                node = node.setdefault(str(part), {})
            node.setdefault("_errors", []).append({"code": code, "message": message})
        return root

    def raise_if_any(self) -> None:
        """Raise 400 / 50035 Invalid Form Body when anything was recorded."""
        if self.items:
            raise ApiError(400, C.E_INVALID_FORM_BODY, "Invalid Form Body", self.nested())


def _is_url(value: Any, *, allow_attachment: bool = False) -> bool:
    if not isinstance(value, str) or len(value) > C.MAX_URL:
        return False
    if allow_attachment and value.startswith("attachment://") and len(value) > len("attachment://"):
        return True
    return re.match(r"^https?://[^\s/$.?#][^\s]*$", value) is not None


def embed_size(embed: JSON) -> int:
    """Characters counted against the 6000 total: title, description, field names/values, footer, author."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for fld in embed.get("fields") or []:
        total += len(fld.get("name") or "") + len(fld.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


def validate_embeds(embeds: Any, errors: FormErrors) -> None:
    """Embed count, per-field and total-size limits, well-formed URLs."""
    if not isinstance(embeds, list):
        errors.add(("embeds",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return
    errors.max_length(("embeds",), embeds, C.MAX_EMBEDS)
    total = 0
    for i, embed in enumerate(embeds):
        base: Path = ("embeds", i)
        if not isinstance(embed, dict):
            errors.add(base, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        errors.max_length((*base, "title"), embed.get("title"), C.MAX_EMBED_TITLE)
        errors.max_length((*base, "description"), embed.get("description"), C.MAX_EMBED_DESCRIPTION)
        if embed.get("url") is not None and not _is_url(embed["url"]):
            errors.add((*base, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        color = embed.get("color")
        if color is not None and (not isinstance(color, int) or not 0 <= color <= 0xFFFFFF):
            errors.add((*base, "color"), "NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215.")
        fields = embed.get("fields") or []
        errors.max_length((*base, "fields"), fields, C.MAX_EMBED_FIELDS)
        for j, fld in enumerate(fields):
            for key, limit in (("name", C.MAX_FIELD_NAME), ("value", C.MAX_FIELD_VALUE)):
                value = fld.get(key)
                if value is None or value == "":
                    errors.add((*base, "fields", j, key), "BASE_TYPE_REQUIRED", "This field is required")
                else:
                    errors.max_length((*base, "fields", j, key), value, limit)
        footer = embed.get("footer")
        if footer is not None:
            if not footer.get("text"):
                errors.add((*base, "footer", "text"), "BASE_TYPE_REQUIRED", "This field is required")
            errors.max_length((*base, "footer", "text"), footer.get("text"), C.MAX_FOOTER_TEXT)
        author = embed.get("author")
        if author is not None:
            if not author.get("name"):
                errors.add((*base, "author", "name"), "BASE_TYPE_REQUIRED", "This field is required")
            errors.max_length((*base, "author", "name"), author.get("name"), C.MAX_AUTHOR_NAME)
            if author.get("url") is not None and not _is_url(author["url"]):
                errors.add((*base, "author", "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        for key in ("image", "thumbnail"):
            media = embed.get(key)
            if media is not None and not _is_url(media.get("url"), allow_attachment=True):
                errors.add((*base, key, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        total += embed_size(embed)
    if total > C.MAX_EMBED_TOTAL:
        errors.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {C.MAX_EMBED_TOTAL}")


def _check_custom_id(component: JSON, path: Path, errors: FormErrors, seen: set[str]) -> None:
    custom_id = component.get("custom_id")
    if custom_id is None:
        errors.add((*path, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
        return
    errors.bad_length((*path, "custom_id"), custom_id, 1, C.MAX_CUSTOM_ID)
    if custom_id in seen:
        errors.add((*path, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
    seen.add(custom_id)


def _validate_button(button: JSON, path: Path, errors: FormErrors, seen: set[str]) -> None:
    style = button.get("style")
    errors.max_length((*path, "label"), button.get("label"), C.MAX_BUTTON_LABEL)
    if style == C.BUTTON_STYLE_LINK:
        if not _is_url(button.get("url")):
            errors.add((*path, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        if button.get("custom_id") is not None:
            errors.add((*path, "custom_id"), "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED", "A link button cannot have a custom id")
    elif style == C.BUTTON_STYLE_PREMIUM:
        if not button.get("sku_id"):
            errors.add((*path, "sku_id"), "BASE_TYPE_REQUIRED", "This field is required")
    else:
        _check_custom_id(button, path, errors, seen)
        if button.get("url") is not None:
            errors.add((*path, "url"), "BUTTON_COMPONENT_URL_NOT_ALLOWED", "Only link buttons can have a url")
        if not button.get("label") and not button.get("emoji"):
            errors.add((*path, "label"), "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED", "A label or emoji is required")


def _validate_select(select: JSON, path: Path, errors: FormErrors, seen: set[str]) -> None:
    _check_custom_id(select, path, errors, seen)
    errors.max_length((*path, "placeholder"), select.get("placeholder"), C.MAX_SELECT_PLACEHOLDER)
    if select.get("type") == C.COMP_STRING_SELECT:
        options = select.get("options") or []
        errors.bad_length((*path, "options"), options, 1, C.MAX_SELECT_OPTIONS)
        values: set[str] = set()
        for k, option in enumerate(options):
            errors.bad_length((*path, "options", k, "label"), option.get("label"), 1, 100)
            errors.bad_length((*path, "options", k, "value"), option.get("value"), 1, 100)
            errors.max_length((*path, "options", k, "description"), option.get("description"), 100)
            if option.get("value") in values:
                errors.add((*path, "options", k, "value"), "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED", "duplicate value")
            values.add(option.get("value"))
    min_values = select.get("min_values", 1)
    max_values = select.get("max_values", 1)
    if not 0 <= min_values <= 25 or not 1 <= max_values <= 25 or min_values > max_values:
        errors.add((*path, "max_values"), "SELECT_COMPONENT_MIN_MAX_INVALID", "min_values/max_values are invalid")


def _walk_v2(component: JSON, path: Path, errors: FormErrors, seen: set[str], counter: list[int]) -> None:
    counter[0] += 1
    ctype = component.get("type")
    if ctype == C.COMP_BUTTON:
        _validate_button(component, path, errors, seen)
    elif ctype in C.SELECT_TYPES:
        _validate_select(component, path, errors, seen)
    for key in ("components",):
        for k, child in enumerate(component.get(key) or []):
            _walk_v2(child, (*path, key, k), errors, seen, counter)
    for key in ("accessory", "component"):
        child = component.get(key)
        if isinstance(child, dict):
            _walk_v2(child, (*path, key), errors, seen, counter)


def validate_components(components: Any, flags: int, errors: FormErrors) -> None:
    """Action rows (≤5), buttons per row (≤5), selects alone in a row, custom_id/label lengths."""
    if not isinstance(components, list):
        errors.add(("components",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return
    seen: set[str] = set()
    if flags & C.MF_IS_COMPONENTS_V2:
        counter = [0]
        for i, component in enumerate(components):
            _walk_v2(component, ("components", i), errors, seen, counter)
        if counter[0] > C.MAX_V2_COMPONENTS:
            errors.add(("components",), "BASE_TYPE_MAX_LENGTH", f"Must be {C.MAX_V2_COMPONENTS} or fewer in length.")
        return
    errors.max_length(("components",), components, C.MAX_ACTION_ROWS)
    for i, row in enumerate(components):
        path: Path = ("components", i)
        if row.get("type") != C.COMP_ACTION_ROW:
            errors.add((*path, "type"), "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (1,).")
            continue
        children = row.get("components") or []
        errors.bad_length((*path, "components"), children, 1, C.MAX_ROW_BUTTONS)
        has_select = any(c.get("type") in C.SELECT_TYPES for c in children)
        if has_select and len(children) > 1:
            errors.add((*path, "components"), "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "The specified component exceeds the maximum width")
        for j, child in enumerate(children):
            cpath: Path = (*path, "components", j)
            ctype = child.get("type")
            if ctype == C.COMP_BUTTON:
                _validate_button(child, cpath, errors, seen)
            elif ctype in C.SELECT_TYPES:
                _validate_select(child, cpath, errors, seen)
            else:
                errors.add((*cpath, "type"), "COMPONENT_TYPE_INVALID", f"Component type {ctype} is not valid here")


def validate_allowed_mentions(allowed: Any, errors: FormErrors) -> None:
    """``parse`` values and the parse/explicit-list exclusivity rule."""
    if allowed is None:
        return
    parse = allowed.get("parse") or []
    for k, value in enumerate(parse):
        if value not in ("users", "roles", "everyone"):
            errors.add(("allowed_mentions", "parse", k), "ENUM_TYPE_COERCE", f"Value \"{value}\" is not a valid enum value.")
    for kind in ("users", "roles"):
        if kind in parse and allowed.get(kind):
            errors.add(
                ("allowed_mentions",),
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f"parse:[\"{kind}\"] and {kind}: [ids...] are mutually exclusive.",
            )
        errors.max_length(("allowed_mentions", kind), allowed.get(kind), 100)


def validate_message_body(body: JSON, *, prefix: Path = ()) -> None:
    """Length / shape limits of a message create or edit body (fields that are present)."""
    errors = FormErrors(prefix)
    content = body.get("content")
    flags = int(body.get("flags") or 0)
    if content is not None:
        if not isinstance(content, str):
            errors.add(("content",), "BASE_TYPE_STRING", "Could not interpret value as string.")
        else:
            errors.max_length(("content",), content, C.MAX_CONTENT)
    if body.get("embeds") is not None:
        validate_embeds(body["embeds"], errors)
    if body.get("components") is not None:
        validate_components(body["components"], flags, errors)
    if flags & C.MF_IS_COMPONENTS_V2 and (body.get("content") or body.get("embeds")):
        errors.add(("content",), "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                   "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2")
    validate_allowed_mentions(body.get("allowed_mentions"), errors)
    errors.raise_if_any()


def check_not_empty(message: JSON) -> None:
    """A message must show something: content, embeds, components, attachments, stickers or a poll."""
    if (
        message.get("content")
        or message.get("embeds")
        or message.get("components")
        or message.get("attachments")
        or message.get("sticker_items")
        or message.get("poll")
    ):
        return
    raise ApiError(400, C.E_EMPTY_MESSAGE, "Cannot send an empty message")


def validate_modal(data: JSON, *, prefix: Path = ("data",)) -> None:
    """Modal: title 1-45, custom_id 1-100, 1-5 components, text inputs with labels ≤45."""
    errors = FormErrors(prefix)
    errors.bad_length(("title",), data.get("title"), 1, C.MAX_MODAL_TITLE)
    errors.bad_length(("custom_id",), data.get("custom_id"), 1, C.MAX_CUSTOM_ID)
    components = data.get("components") or []
    errors.bad_length(("components",), components, 1, 5)
    seen: set[str] = set()
    for i, row in enumerate(components):
        inner = row.get("components") or ([row["component"]] if isinstance(row.get("component"), dict) else [])
        if row.get("type") == C.COMP_LABEL:
            errors.bad_length(("components", i, "label"), row.get("label"), 1, 45)
        for j, comp in enumerate(inner):
            path: Path = ("components", i, "components", j)
            _check_custom_id(comp, path, errors, seen)
            if comp.get("type") == C.COMP_TEXT_INPUT and row.get("type") == C.COMP_ACTION_ROW:
                errors.bad_length((*path, "label"), comp.get("label"), 1, 45)
            if comp.get("type") in C.SELECT_TYPES:
                if row.get("type") != C.COMP_LABEL:  # a select in a modal goes in a Label
                    errors.add((*path, "type"), "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (4,).")
                if comp.get("type") == C.COMP_STRING_SELECT:
                    options = comp.get("options") or []
                    errors.bad_length((*path, "options"), options, 1, 25)
                    for k, option in enumerate(options):
                        errors.bad_length((*path, "options", k, "label"), option.get("label"), 1, 100)
                        errors.bad_length((*path, "options", k, "value"), option.get("value"), 1, 100)
                        if option.get("description") is not None:
                            errors.bad_length((*path, "options", k, "description"), option["description"], 1, 100)
    errors.raise_if_any()


def validate_autocomplete(data: JSON, *, prefix: Path = ("data",)) -> None:
    """Autocomplete result: ≤25 choices, names 1-100, string values ≤100."""
    errors = FormErrors(prefix)
    choices = data.get("choices")
    if choices is None:
        errors.add(("choices",), "BASE_TYPE_REQUIRED", "This field is required")
    else:
        errors.max_length(("choices",), choices, C.MAX_AUTOCOMPLETE_CHOICES)
        for k, choice in enumerate(choices):
            errors.bad_length(("choices", k, "name"), choice.get("name"), 1, 100)
            if isinstance(choice.get("value"), str):
                errors.max_length(("choices", k, "value"), choice["value"], 100)
    errors.raise_if_any()


# ------------------------------------------------------------------------- application commands
def _validate_name(name: Any, path: Path, errors: FormErrors, *, chat_input: bool) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        errors.add((*path, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        return
    if chat_input and (not COMMAND_NAME_RE.match(name) or name != name.lower()):
        errors.add((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _validate_option(option: JSON, path: Path, errors: FormErrors, depth: int) -> None:
    _validate_name(option.get("name"), path, errors, chat_input=True)
    errors.bad_length((*path, "description"), option.get("description"), 1, C.MAX_COMMAND_DESCRIPTION)
    otype = option.get("type")
    if otype not in range(C.OPT_SUB_COMMAND, C.OPT_ATTACHMENT + 1):
        errors.add((*path, "type"), "ENUM_TYPE_COERCE", f"Value \"{otype}\" is not a valid enum value.")
        return
    if otype in (C.OPT_SUB_COMMAND, C.OPT_SUB_COMMAND_GROUP):
        if depth >= 2 or (otype == C.OPT_SUB_COMMAND_GROUP and depth >= 1):
            errors.add((*path, "type"), "APPLICATION_COMMAND_SUBCOMMAND_NESTED_TOO_DEEP", "Subcommands nested too deep")
        _validate_options(option.get("options") or [], path, errors, depth + 1)
        return
    choices = option.get("choices")
    if choices is not None:
        errors.max_length((*path, "choices"), choices, C.MAX_CHOICES)
        for k, choice in enumerate(choices):
            errors.bad_length((*path, "choices", k, "name"), choice.get("name"), 1, 100)
            if isinstance(choice.get("value"), str):
                errors.bad_length((*path, "choices", k, "value"), choice["value"], 1, 100)
        if option.get("autocomplete"):
            errors.add((*path, "autocomplete"), "APPLICATION_COMMAND_AUTOCOMPLETE_INCOMPATIBLE",
                       "Autocomplete cannot be set on options with choices")
    for key in ("min_length", "max_length"):
        if option.get(key) is not None and not 0 <= option[key] <= 6000:
            errors.add((*path, key), "NUMBER_TYPE_MAX", "int value should be between 0 and 6000.")


def _validate_options(options: list[JSON], path: Path, errors: FormErrors, depth: int) -> None:
    errors.max_length((*path, "options"), options, C.MAX_COMMAND_OPTIONS)
    names: set[str] = set()
    seen_optional = False
    kinds = {o.get("type") in (C.OPT_SUB_COMMAND, C.OPT_SUB_COMMAND_GROUP) for o in options}
    if len(kinds) > 1:
        errors.add((*path, "options"), "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                   "Sub-command and sub-command group option types are mutually exclusive to all other types")
    for k, option in enumerate(options):
        opath: Path = (*path, "options", k)
        _validate_option(option, opath, errors, depth)
        name = option.get("name")
        if name in names:
            errors.add((*opath, "name"), "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique")
        names.add(name)
        if option.get("required"):
            if seen_optional:
                errors.add((*opath, "required"), "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                           "Required options must be placed before non-required options")
        elif option.get("type") not in (C.OPT_SUB_COMMAND, C.OPT_SUB_COMMAND_GROUP):
            seen_optional = True


def validate_command(command: JSON, errors: FormErrors, path: Path = ()) -> None:
    """One application command (chat input, user or message context menu)."""
    ctype = command.get("type", 1)
    chat_input = ctype == 1
    _validate_name(command.get("name"), path, errors, chat_input=chat_input)
    if chat_input:
        errors.bad_length((*path, "description"), command.get("description"), 1, C.MAX_COMMAND_DESCRIPTION)
        _validate_options(command.get("options") or [], path, errors, 0)
    else:
        if command.get("description"):
            errors.add((*path, "description"), "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                       "Context menu commands cannot have a description")
        if command.get("options"):
            errors.add((*path, "options"), "APPLICATION_COMMAND_CONTEXT_MENU_OPTIONS",
                       "Context menu commands cannot have options")


def validate_commands(commands: Any) -> None:
    """A bulk-overwrite body: a list of commands, unique (type, name), ≤100 chat-input commands."""
    errors = FormErrors()
    if not isinstance(commands, list):
        errors.add((), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        errors.raise_if_any()
        return
    seen: set[tuple[int, str]] = set()
    chat = 0
    for i, command in enumerate(commands):
        validate_command(command, errors, (i,))
        key = (command.get("type", 1), command.get("name"))
        if key in seen:
            errors.add((i, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
        seen.add(key)
        chat += key[0] == 1
    if chat > C.MAX_COMMANDS:
        errors.add((), "BASE_TYPE_MAX_LENGTH", f"Must be {C.MAX_COMMANDS} or fewer in length.")
    errors.raise_if_any()
