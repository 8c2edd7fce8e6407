"""A faster way through graphql-core for the commonest shape of result: objects whose selected
fields are all plain attributes with scalar or enum values (a page of restore points).

graphql-core builds a resolve-info object, calls the resolver and completes the value for
every field of every object: about 8 µs each, so a page of 50 rows of 6 fields costs 2-3 ms
of pure bookkeeping. For a selection made only of Strawberry's *basic* fields (no resolver,
no arguments, no field extensions) with leaf types, the result of each field is exactly
`coerce_output_value(getattr(source, name))`, so this executor computes that directly.
Anything else (a resolver, arguments, a nested object, a null in a non-null field, a value
that does not coerce) takes graphql-core's own path, which then reports it as usual.

Subscription events: when many clients follow the same stream with the same document and
variables, each event is executed once per role and the result shared, provided everything
below the root field took the direct path (so no resolver could see who is asking). The
shared result's JSON is then made once too (shared_frames.py).
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

from graphql import (
    ExecutionResult,
    GraphQLObjectType,
    GraphQLString,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from server.api.fast_path import shared_frames

# (response key, resolver, coerce, non-null); resolver None means __typename.
_Step = tuple[str, Callable[..., Any] | None, Callable[[Any], Any] | None, bool]
_FALLBACK = object()


class FastLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, with a direct path for all-leaf selections of basic fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plans per grouped field set of this request. graphql-core memoizes the grouped
        # set per parent selection, so all rows of a list share one; the set is kept
        # alive beside its plan so that its id is never reused for another.
        self._leaf_plans: dict[int, tuple[object, list[_Step] | None]] = {}
        self._event_key: tuple[object, ...] | None = None
        self._all_direct = True  # below the root, every object took the direct path

    def build_per_event_executor(self, payload: Any) -> Any:
        key = _event_key(self, payload)
        if key is not None and (shared := _SHARED_EVENTS.get(key)) is not None and shared[0] is payload:
            _SHARED_EVENTS.move_to_end(key)
            return _SharedEvent(shared[1])  # no copy of this executor for an event already run
        # graphql-core makes it with type(self): one of these, typed as its base class.
        executor = cast(FastLeafExecutionContext, super().build_per_event_executor(payload))
        executor._leaf_plans = {}
        executor._all_direct = True
        executor._event_key = key
        return executor

    def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        key = self._event_key
        if key is None:
            return super().execute_operation(*args, **kwargs)
        if (shared := _SHARED_EVENTS.get(key)) is not None and shared[0] is self.root_value:
            _SHARED_EVENTS.move_to_end(key)
            return shared[1]
        result = super().execute_operation(*args, **kwargs)
        if self._all_direct and isinstance(result, ExecutionResult) and not result.errors:
            # The payload is kept with the result, so its id cannot be reused while cached.
            _SHARED_EVENTS[key] = (self.root_value, result)
            shared_frames.share(result.data)
            if len(_SHARED_EVENTS) > _SHARED_EVENT_LIMIT:
                _SHARED_EVENTS.popitem(last=False)
        return result

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set)
        if plan is not None:
            result = _run_plan(plan, source_value, parent_type.name)
            if result is not _FALLBACK:
                return result
        if path is not None:  # below the root: a resolver may run, and see the context
            self._all_direct = False
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Step] | None:
        cached = self._leaf_plans.get(id(grouped_field_set))
        if cached is not None:
            return cached[1]
        plan = self._make_plan(parent_type, grouped_field_set)
        self._leaf_plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def _make_plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Step] | None:
        steps: list[_Step] = []
        for response_name, details in grouped_field_set.items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                steps.append((response_name, None, None, True))
                continue
            field_def = self.schema.get_field(parent_type, name)
            if field_def is None or field_def.args or node.arguments:
                return None
            resolve = field_def.resolve
            # Strawberry's resolver for a basic field ignores its info and reads the attribute.
            if resolve is None or getattr(resolve, "__name__", "") != "_get_basic_result":
                return None
            if (
                self.middleware_manager is not None
                and self.middleware_manager.get_field_resolver(resolve) is not resolve
            ):
                return None  # an extension wraps every resolver: let graphql-core call it
            leaf = get_nullable_type(field_def.type)
            if not is_leaf_type(leaf):
                return None
            steps.append((response_name, _reader(field_def, resolve), _coercer(leaf), is_non_null_type(field_def.type)))
        return steps

    def complete_list_value(
        self, return_type: Any, field_details_list: Any, info: Any, path: Any, result: Any, position_context: Any
    ) -> Any:
        rows = self._direct_list(return_type, field_details_list, info, result)
        if rows is not None:
            return rows
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def _direct_list(self, return_type: Any, field_details_list: Any, info: Any, result: Any) -> list[Any] | None:
        """A whole list of plain objects at once, skipping four graphql-core calls per row."""
        object_type = get_nullable_type(return_type.of_type)
        if not isinstance(object_type, GraphQLObjectType) or not isinstance(result, list | tuple):
            return None
        if any(details.node.directives for details in field_details_list):
            return None  # @stream and friends: graphql-core's business
        grouped_field_set, new_defer_usages, *_ = self.collect_subfields(object_type, field_details_list)
        plan = None if new_defer_usages else self._plan(object_type, grouped_field_set)
        if plan is None:
            return None
        is_type_of = object_type.is_type_of
        rows = []
        for item in result:
            if item is None or (is_type_of is not None and is_type_of(item, info) is not True):
                return None
            row = _run_plan(plan, item, object_type.name)
            if row is _FALLBACK:
                return None
            rows.append(row)
        return rows


def _coercer(leaf: Any) -> Callable[[Any], Any]:
    """The leaf type's output coercion, short-cut for the commonest case: a str is a String."""
    coerce = leaf.coerce_output_value
    if leaf is GraphQLString:
        return lambda value: value if type(value) is str else coerce(value)
    return coerce


def _reader(field_def: Any, resolve: Callable[..., Any]) -> Callable[[Any], Any]:
    """How to read a basic field: the attribute itself, when Strawberry's default resolver
    (getattr) is what its resolver would call anyway."""
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if definition is not None and definition.base_resolver is None and definition.default_resolver is getattr:
        return operator.attrgetter(definition.python_name)
    return resolve


_SHARED_EVENTS: OrderedDict[tuple[object, ...], tuple[Any, Any]] = OrderedDict()
_SHARED_EVENT_LIMIT = 256


class _SharedEvent:
    """Stands in for a per-event executor when the event's result is already shared."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        return self.result


def _event_key(executor: FastLeafExecutionContext, payload: Any) -> tuple[object, ...] | None:
    """What makes two subscribers' results for one event equal: the same parsed operation
    (the parser cache hands every client the same one), variables, payload and role."""
    request = executor.__dict__.get("_request_key", _UNSET)
    if request is _UNSET:  # the same for every event of a subscription: worked out once
        try:
            variables = tuple(sorted(executor.variable_values.coerced.items()))
            hash(variables)
            request = (id(executor.operation), variables)
        except TypeError:
            request = None
        executor._request_key = request  # type: ignore[attr-defined]
    if request is None:
        return None
    actor = getattr(executor.context_value, "actor", None)
    return (*request, id(payload), getattr(actor, "role", None))


_UNSET = object()


def _run_plan(plan: list[_Step], source: Any, type_name: str) -> Any:
    result: dict[str, Any] = {}
    try:
        for key, resolve, coerce, non_null in plan:
            if resolve is None:
                result[key] = type_name
                continue
            value = resolve(source)
            if value is None:
                if non_null:
                    return _FALLBACK  # graphql-core raises the proper non-null error
                result[key] = None
                continue
            if isinstance(value, Exception) or hasattr(value, "__await__"):
                return _FALLBACK
            coerced = coerce(value)  # type: ignore[misc]
            if coerced is Undefined or coerced is None:
                return _FALLBACK
            result[key] = coerced
    except Exception:
        return _FALLBACK  # let graphql-core run it and report the error where it belongs
    return result
