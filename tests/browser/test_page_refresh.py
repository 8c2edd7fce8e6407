"""The page's views refresh when an operation ends, whatever the order in which the page hears of
it: the operationsChanged event, a refetch of the operations list, a refetch of a view already in
flight. Each test holds one of those back (Playwright routes the page's HTTP requests and its
websocket) so that the order that once lost an import's row is made every time."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.support.api import create_and_wait, execute, wait_for_operation
from tests.support.browser import TIMEOUT_MS, Page, expect, run
from tests.support.in_process import InProcessServer
from tests.support.local_copies import export_operation

# Its tests share a module-scoped server and browser: one xdist worker runs them all, so they
# are made once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser-refresh")]


def operation_name(request: Any) -> str | None:
    """The GraphQL operation a page's request carries (urql sends queries by GET when short)."""
    if request.method == "GET":
        return (parse_qs(urlparse(request.url).query).get("operationName") or [None])[0]
    try:
        return (request.post_data_json or {}).get("operationName")
    except ValueError:  # a multipart upload
        return None


class Held:
    """Requests of one GraphQL operation, and websocket messages from the server, held back
    while armed and let go by the test. With `read_now`, a held request is sent at once and its
    answer held (an answer read before what the test does next)."""

    def __init__(
        self, page: Page, operation: str, message: Callable[[str], bool] = lambda _: False, read_now: bool = False
    ) -> None:
        self.page, self.operation, self.message, self.read_now = page, operation, message, read_now
        self.armed = False
        self.routes: list[tuple[Any, Any]] = []
        self.messages: list[str] = []
        self.sockets: list[Any] = []
        self.in_flight = 0  # requests of the operation not yet answered
        page.page.route("**/graphql**", self._request)
        page.page.route_web_socket("**/graphql", self._socket)
        page.page.on("requestfinished", self._answered)
        page.page.on("requestfailed", self._answered)

    def _answered(self, request: Any) -> None:
        if operation_name(request) == self.operation:
            self.in_flight -= 1

    def _request(self, route: Any) -> None:
        if operation_name(route.request) == self.operation:
            self.in_flight += 1
        if self.armed and operation_name(route.request) == self.operation:
            self.routes.append((route, route.fetch() if self.read_now else None))
        else:
            route.continue_()

    def _socket(self, socket: Any) -> None:
        server = socket.connect_to_server()
        self.sockets.append(socket)

        def from_server(message: str | bytes) -> None:
            if self.armed and isinstance(message, str) and self.message(message):
                self.messages.append(message)
            else:
                socket.send(message)

        server.on_message(from_server)

    def settle(self) -> None:
        """Wait until no request of the operation is in flight. urql's document cache asks again
        for a list after a mutation or an event whose answer has a type the list has (an
        Operation for the operations list), but only when the list's last answer is in: so that
        the next mutation makes it ask."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while self.in_flight > 0:
            assert time.monotonic() < deadline, f"{self.operation} is still being asked for"
            self.page.page.wait_for_timeout(50)
        rendered(self.page)

    def wait_for_request(self) -> None:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not self.routes:
            assert time.monotonic() < deadline, f"the page did not ask for {self.operation}"
            self.page.page.wait_for_timeout(50)  # lets Playwright call the route handler

    def release_requests(self, rewrite: Callable[[Any], Any] | None = None) -> None:
        """Let the held requests go (or their held answers); `rewrite` changes the answer's data."""
        for route, answer in self.routes:
            if answer is None and rewrite is None:
                route.continue_()
                continue
            answer = answer or route.fetch()
            body = answer.json()
            route.fulfill(response=answer, json={**body, "data": rewrite(body["data"])} if rewrite else body)
        self.routes.clear()

    def release_messages(self) -> None:
        self.armed = False
        for message in self.messages:
            self.sockets[-1].send(message)
        self.messages.clear()


def rendered(page: Page) -> None:
    """Wait until the page has handled what it has received: React renders and runs its effects
    before the second frame from now."""
    page.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def an_import_ends(message: str) -> bool:
    """An operationsChanged event saying that an import has ended."""
    event = json.loads(message)
    op = ((event.get("payload") or {}).get("data") or {}).get("operationsChanged") or {}
    return op.get("kind") == "IMPORT_LOCAL_COPY" and op.get("done") is True


def a_copy_without_its_restore_point(site: InProcessServer, label: str) -> str:
    """The file name of a local copy of a restore point that is then deleted (importing the
    copy brings it back)."""
    point = run(create_and_wait(site, label))["restorePoint"]
    op_id = run(export_operation(site, point["id"]))["id"]
    copy = run(execute(site, "query($id: ID!) { operation(id: $id) { localCopy { fileName } } }", id=op_id))
    run(execute(site, "mutation($id: ID!) { deleteRestorePoint(id: $id) { deletedId } }", id=point["id"]))
    return copy["operation"]["localCopy"]["fileName"]


def running_import(site: InProcessServer) -> str:
    ops = run(execute(site, "{ operations(first: 20) { nodes { id kind createdAt } } }"))["operations"]["nodes"]
    return max((op for op in ops if op["kind"] == "IMPORT_LOCAL_COPY"), key=lambda op: op["createdAt"])["id"]


def test_an_import_seen_ended_in_the_operations_list_before_its_event_refreshes_the_history(open_page, site) -> None:
    """The operations list the page refetches after the import's mutation is read once the
    import has ended, and reaches the page before the import's end event: the history must
    refresh all the same (it did not: the event found the import already ended, and nothing else
    told the views)."""
    label = f"listed first {uuid.uuid4().hex[:6]}"
    file_name = a_copy_without_its_restore_point(site, label)
    page = open_page()
    held = Held(page, "Operations", an_import_ends)
    page.sign_in(site.token)
    copy = page.region("Local copies").get_by_role("listitem").filter(has_text=file_name)
    expect(copy).to_have_count(1)
    expect(page.row(label)).to_have_count(0)

    held.settle()
    held.armed = True
    copy.get_by_role("button", name="Import").click()
    held.wait_for_request()
    final = run(wait_for_operation(site, running_import(site)))
    assert final["status"] == "SUCCEEDED", final
    held.release_requests()  # read now: the import has ended
    completed = page.region("Completed operations").get_by_role("listitem").filter(has_text=f"Import: {label}")
    expect(completed).to_have_count(1)  # the list told the page first
    held.release_messages()
    expect(page.row(label)).to_have_count(1)
    expect(page.row(label)).to_contain_text("imported")


def test_an_operations_list_read_before_an_end_never_brings_the_operation_back(open_page, site) -> None:
    """The operations list refetched after the import's mutation answers after the import's end
    event, with what it read before that end: the import must stay ended (it went back to
    "Running operations" for good)."""
    label = f"listed late {uuid.uuid4().hex[:6]}"
    file_name = a_copy_without_its_restore_point(site, label)
    page = open_page()
    held = Held(page, "Operations")
    page.sign_in(site.token)
    copy = page.region("Local copies").get_by_role("listitem").filter(has_text=file_name)
    expect(copy).to_have_count(1)

    held.settle()
    held.armed = True
    copy.get_by_role("button", name="Import").click()
    held.wait_for_request()
    held.armed = False
    op_id = running_import(site)
    assert run(wait_for_operation(site, op_id))["status"] == "SUCCEEDED"
    expect(page.row(label)).to_have_count(1)  # the end event came, and the history refreshed
    completed = page.region("Completed operations").get_by_role("listitem").filter(has_text=f"Import: {label}")
    expect(completed).to_have_count(1)

    marker = f"answered late {uuid.uuid4().hex[:6]}"

    def as_it_was_running(data: Any) -> Any:
        nodes = data["operations"]["nodes"]
        import_op = next(op for op in nodes if op["id"] == op_id)
        # A finished operation only this answer has: once it shows, the page has taken the answer in.
        seen = {**import_op, "id": "op_0000000000000000000000fe", "restorePoint": {"id": "rp_x", "label": marker}}
        import_op.update(status="RUNNING", done=False, progress=0.5, stage="Storing content", finishedAt=None)
        import_op.update(lastSequence=3)
        return {**data, "operations": {**data["operations"], "nodes": [seen, *nodes]}}

    held.release_requests(as_it_was_running)
    expect(page.region("Completed operations")).to_contain_text(marker)
    expect(page.region("Running operations")).to_contain_text("None.")
    expect(completed).to_have_count(1)


def test_a_view_refetch_joined_to_one_in_flight_is_asked_again(open_page, site) -> None:
    """Local copies is asked for by two views (the list, and the location upload form). When an
    operation ends both ask; the answer is read at once, and held. A copy deleted from the page
    meanwhile refetches the list: urql joined that request to the one in flight, whose answer
    (read before the delete) then showed the deleted copy, for good."""
    label = f"deleted meanwhile {uuid.uuid4().hex[:6]}"
    point = run(create_and_wait(site, label))["restorePoint"]
    run(export_operation(site, point["id"]))
    page = open_page()
    held = Held(page, "LocalCopies", read_now=True)
    page.sign_in(site.token)
    copy = page.region("Local copies").get_by_role("listitem").filter(has_text=label)
    expect(copy).to_have_count(1)
    expect(page.region("Locations")).to_contain_text("No other locations")  # its upload form asks too

    held.armed = True
    other = f"ends meanwhile {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, other))
    expect(page.row(other)).to_have_count(1)  # the page saw it end: both views asked again
    held.wait_for_request()
    held.armed = False
    with page.page.expect_response(lambda response: operation_name(response.request) == "DeleteLocalCopy"):
        copy.get_by_role("button", name="Delete").click()
    rendered(page)  # the page has asked again for the list (and urql joined it to the held one)
    held.release_requests()  # the answer read before the delete
    expect(copy).to_have_count(0)


def test_an_operation_that_ends_before_the_page_subscribes_is_shown(open_page, site) -> None:
    """The page reads the operations list, then subscribes to their changes once its websocket
    is acknowledged. An operation that ended in between is in neither: the list was read before
    it, and the subscription started after its last event. The page read the list again only
    after a reconnect, so the restore point it made stayed off the page until some other
    operation ended. Here the acknowledgement is held until the operation has ended."""
    page = open_page()
    held = Held(page, "NoQueryIsHeld", message=lambda message: '"connection_ack"' in message)
    held.armed = True
    page.sign_in(site.token)
    expect(page.region("Local copies")).to_be_visible()
    expect(page.region("Completed operations")).to_be_visible()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held.messages:  # the server has acknowledged the page's websocket: the ack is held
        assert time.monotonic() < deadline, "the page's websocket was not acknowledged"
        page.page.wait_for_timeout(50)  # lets Playwright call the websocket's handler

    label = f"ended before the subscription {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    rendered(page)
    held.release_messages()
    expect(page.row(label)).to_have_count(1)
    expect(page.region("Completed operations")).to_contain_text(label)


def test_a_dismiss_before_the_page_subscribes_takes_the_row_off(open_page, site) -> None:
    """Dismissed right after a reload, before the page's websocket is acknowledged: the event
    saying so reaches no subscription, and a dismissed operation is in no later list, so the row
    stayed (seen in CI). The page now takes the mutation's own answer too."""
    label = f"dismissed before the subscription {uuid.uuid4().hex[:6]}"
    run(create_and_wait(site, label))
    page = open_page()
    held = Held(page, "NoQueryIsHeld", message=lambda message: '"connection_ack"' in message)
    held.armed = True
    page.sign_in(site.token)
    done = page.region("Completed operations").get_by_role("listitem").filter(has_text=label)
    expect(done).to_have_count(1)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held.messages:  # the server has acknowledged the page's websocket: the ack is held
        assert time.monotonic() < deadline, "the page's websocket was not acknowledged"
        page.page.wait_for_timeout(50)
    done.get_by_role("button", name="Dismiss").click()
    expect(done).to_have_count(0)
    held.release_messages()
    rendered(page)
    expect(done).to_have_count(0)
