"""A virtual table of users: only the rows on screen exist, fetched a page at a time in workers.

Filling a DataTable with every user does not scale (100,000 rows take ~20 s before the first
paint), so this widget uses Textual's line API: ``render_line`` draws the visible lines from a
small cache of pages and asks a worker for any page it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from mfa_tui.core.errors import MfaTuiError
from mfa_tui.core.services.users import MatchCount, UserPager, UserQuery, UserView
from mfa_tui.core.text import printable

SHORT_TYPE_LABELS = {
    "none": "None",
    "totp": "Authenticator",
    "email": "Email",
    "sms": "SMS",
    "yubikey": "Yubikey",
    "radius": "RADIUS",
    "duo": "Duo",
}
SHORT_STATUS_LABELS = {"none": "None", "pending": "Pending", "configured": "Configured"}


@dataclass(frozen=True)
class Column:
    title: str
    key: str
    weight: int  # share of the spare width
    minimum: int


COLUMNS = (
    Column("Username", "username", 4, 10),
    Column("Name", "display_name", 2, 6),
    Column("Email", "email", 3, 6),
    Column("Role", "role", 0, 8),
    Column("MFA Type", "mfa_type", 0, 13),
    Column("MFA Status", "mfa_status", 0, 10),
    Column("Locked", "locked", 0, 6),
)


def cell_text(user: UserView, key: str) -> str:
    if key == "mfa_type":
        return SHORT_TYPE_LABELS.get(user.mfa_type, user.mfa_type)
    if key == "mfa_status":
        return SHORT_STATUS_LABELS.get(user.mfa_status, user.mfa_status)
    if key == "locked":
        return "Locked" if user.locked else ("Reset?" if user.reset_requested else "")
    return printable(getattr(user, key) or "")


class UserTable(ScrollView, can_focus=True):
    """Rows of users for a ``UserQuery``; Enter posts ``UserTable.UserSelected``."""

    DEFAULT_CSS = """
    UserTable {
        height: 1fr;
        scrollbar-gutter: stable;
    }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Edit", show=True),
    ]
    PAGE_SIZE = 100
    MAX_CACHED_PAGES = 8

    cursor = reactive(0, always_update=True)

    class UserSelected(Message):
        def __init__(self, user: UserView) -> None:
            super().__init__()
            self.user = user

    class Loaded(Message):
        """The rows of the current query are in place — for a status line.

        ``exact`` is False when at least ``total`` users match. While ``counting``, ``total`` is
        only the first page's rows and another ``Loaded`` follows once the count is known.
        """

        def __init__(self, total: int, exact: bool = True, counting: bool = False) -> None:
            super().__init__()
            self.total = total
            self.exact = exact
            self.counting = counting

    class LoadFailed(Message):
        """The rows could not be read (the database is down, locked…): ``message`` says why."""

        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

    def __init__(self, pager: UserPager, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pager = pager
        self.query_spec = UserQuery()
        self.total = 0
        self.exact = True
        self._pages: dict[int, list[UserView]] = {}
        self._pending: set[int] = set()
        self._counting = False
        self._generation = 0
        self._paint: tuple[Style, list[int]] = (Style(), [])

    # Data ------------------------------------------------------------------------------------------

    def load(self, query: UserQuery | None = None, *, keep_cursor: bool = False) -> None:
        """Show ``query`` (or reload the current one, e.g. after an edit)."""
        if query is not None:
            self.query_spec = query
        self._generation += 1
        # The old rows stay on screen until the new count and first page arrive (no flicker), and
        # no page of the new query is fetched before its count is known.
        self._counting = True
        self._pending.clear()
        if not keep_cursor:
            self.cursor = 0
            self.scroll_to(y=0, animate=False)
        self._count(self._generation, self.query_spec)

    @work(thread=True, exclusive=True, group="user-table-count")
    def _count(self, generation: int, query: UserQuery) -> None:
        try:
            # The first page goes on screen before the count, which can take longer (a million
            # rows).
            first = self.pager.page(query, 0, self.PAGE_SIZE, 0, exact=False)
            if len(first) < self.PAGE_SIZE:
                # Every match is on the first page: that is the count, no need to ask for it.
                self.app.call_from_thread(
                    self._counted, generation, MatchCount(len(first), True), first
                )
                return
            self.app.call_from_thread(self._first_page_shown, generation, first)
            matches = self.pager.count(query)
        except MfaTuiError as error:
            self.app.call_from_thread(self._failed, generation, str(error))
            return
        self.app.call_from_thread(self._counted, generation, matches, None)

    def _failed(self, generation: int, message: str) -> None:
        # What is on screen stays, and nothing more is fetched for this query (no retry at every
        # repaint): the next load, a search or a sort, tries again.
        if generation == self._generation:
            self.post_message(self.LoadFailed(message))

    def _first_page_shown(self, generation: int, first_page: list[UserView]) -> None:
        if generation != self._generation:
            return
        # Still counting: pages past the first wait for the count (reading from the end needs it).
        self._show(MatchCount(len(first_page), False), {0: first_page})
        self.post_message(self.Loaded(self.total, exact=False, counting=True))

    def _counted(
        self, generation: int, matches: MatchCount, first_page: list[UserView] | None
    ) -> None:
        if generation != self._generation:
            return
        self._counting = False
        self._show(matches, {0: first_page if first_page is not None else self._pages[0]})
        self.post_message(self.Loaded(matches.total, matches.exact))

    def _show(self, matches: MatchCount, pages: dict[int, list[UserView]]) -> None:
        self._pages = pages
        self.total = matches.total
        self.exact = matches.exact
        self.cursor = min(self.cursor, max(matches.total - 1, 0))
        self.virtual_size = Size(self.size.width, matches.total + 1)
        self.refresh()

    def _row(self, index: int) -> UserView | None:
        page_number, offset = divmod(index, self.PAGE_SIZE)
        page = self._pages.get(page_number)
        if page is None:
            if not self._counting:
                self._request(page_number)
            return None
        return page[offset] if offset < len(page) else None

    def _request(self, page_number: int) -> None:
        if page_number in self._pending:
            return
        self._pending.add(page_number)
        self._fetch(self._generation, self.query_spec, page_number, self.total, self.exact)

    @work(thread=True, group="user-table-pages")
    def _fetch(
        self, generation: int, query: UserQuery, page_number: int, total: int, exact: bool
    ) -> None:
        try:
            rows = self.pager.page(
                query, page_number * self.PAGE_SIZE, self.PAGE_SIZE, total, exact=exact
            )
        except MfaTuiError as error:
            self.app.call_from_thread(self._failed, generation, str(error))
            return
        self.app.call_from_thread(self._fetched, generation, page_number, rows)

    def _fetched(self, generation: int, page_number: int, rows: list[UserView]) -> None:
        if generation != self._generation:
            return
        self._pending.discard(page_number)
        self._pages[page_number] = rows
        cursor_page = self.cursor // self.PAGE_SIZE
        while len(self._pages) > self.MAX_CACHED_PAGES:
            farthest = max(self._pages, key=lambda number: abs(number - cursor_page))
            del self._pages[farthest]
        self.refresh()

    @property
    def counting(self) -> bool:
        """The current query's count is still on its way (its first page may be shown already)."""
        return self._counting

    @property
    def cached_rows(self) -> int:
        return sum(len(page) for page in self._pages.values())

    @property
    def selected_user(self) -> UserView | None:
        return self._row(self.cursor) if self.total else None

    # Drawing ---------------------------------------------------------------------------------------

    def _widths(self) -> list[int]:
        width = max(self.scrollable_content_region.width, 20)
        gaps = len(COLUMNS) - 1
        fixed = sum(column.minimum for column in COLUMNS) + gaps
        spare = max(width - fixed, 0)
        weights = sum(column.weight for column in COLUMNS)
        widths = [column.minimum + spare * column.weight // weights for column in COLUMNS]
        widths[0] += width - gaps - sum(widths)
        return widths

    def render_lines(self, crop: Region) -> list[Strip]:
        # Computed once per paint, not once per line: both walk the styles and cost more than a row.
        self._paint = (self.rich_style, self._widths())
        return super().render_lines(crop)

    def _line(self, cells: list[str], style: Style) -> Strip:
        widths = self._paint[1]
        text = " ".join(
            set_cell_size(cell, width) for cell, width in zip(cells, widths, strict=True)
        )
        return Strip([Segment(text, style)], sum(widths) + len(widths) - 1)

    def render_line(self, y: int) -> Strip:
        base = self._paint[0]
        if y == 0:
            return self._line([c.title for c in COLUMNS], base + Style(bold=True, underline=True))
        index = int(self.scroll_offset.y) + y - 1
        if index >= self.total:
            if self.total == 0 and y == 1 and self._generation:
                return self._line(
                    ["No users match.", *[""] * (len(COLUMNS) - 1)], base + Style(dim=True)
                )
            return Strip.blank(sum(self._paint[1]) + len(COLUMNS) - 1, base)
        user = self._row(index)
        cells = (
            [cell_text(user, c.key) for c in COLUMNS] if user else ["…", *[""] * (len(COLUMNS) - 1)]
        )
        style = base
        if index == self.cursor:
            style = base + (Style(reverse=True) if self.has_focus else Style(underline=True))
        return self._line(cells, style)

    # Keys ------------------------------------------------------------------------------------------

    @property
    def _visible_rows(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def watch_cursor(self, cursor: int) -> None:
        top = int(self.scroll_offset.y)
        if cursor < top:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= top + self._visible_rows:
            self.scroll_to(y=cursor - self._visible_rows + 1, animate=False)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        if self.total:
            self.cursor = min(max(self.cursor + delta, 0), self.total - 1)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * self._visible_rows)

    def action_jump(self, where: int) -> None:
        if self.total:
            self.cursor = 0 if where == 0 else self.total - 1

    def action_select(self) -> None:
        user = self.selected_user
        if user is not None:
            self.post_message(self.UserSelected(user))

    def on_click(self, event) -> None:  # type: ignore[no-untyped-def]
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < self.total:
            self.cursor = index

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self.total + 1)
