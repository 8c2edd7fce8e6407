// An operation's log in a scrolling box, virtualized by @tanstack/react-virtual: each row is
// measured as drawn, so a long line wraps onto as many lines as it needs and is read whole; once
// the log is long, only the rows in view (and a few around) are in the DOM, so a 10,000-line log
// costs what 30 lines cost. Following, the box stays on the newest line while the reader has
// not scrolled up.
import { useLayoutEffect, useRef } from "react";
import { defaultRangeExtractor, useVirtualizer, type Range } from "@tanstack/react-virtual";

export type LogLine = { sequence: number; at: string; level: string; message: string };

// Up to this many lines every row is in the DOM (find in page and a screen reader see the whole
// log); beyond, only the rows in view are, each saying its place in the whole log.
const WINDOW_FROM = 200;
// One line of a row (.log li's line-height): the estimate of a row not measured yet.
const LINE_PX = 18;
const OVERSCAN = 10;
// The box's padding above the first row and below the last (part of the list's measured height).
const PAD_PX = 4;
// Within this many pixels of the end, the reader is at the end: new lines keep it there.
const AT_END_PX = 8;

function everyRow(range: Range): number[] {
  return Array.from({ length: range.count }, (_, index) => index);
}

/** Log lines; with `follow`, it keeps the newest line in view while the reader has not scrolled up. */
export function LogView({ lines, label, follow = false }: { lines: readonly LogLine[]; label: string; follow?: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const windowed = lines.length > WINDOW_FROM;
  const rows = useVirtualizer({
    count: lines.length,
    getScrollElement: () => box.current,
    estimateSize: () => LINE_PX,
    // Rows are keyed by their index (the default): a log only grows at its end.
    rangeExtractor: windowed ? defaultRangeExtractor : everyRow,
    overscan: OVERSCAN,
    paddingStart: PAD_PX,
    paddingEnd: PAD_PX,
    // Lines come at the end: the box follows them when it was at the end, and stays there as
    // the last rows are measured taller than estimated.
    anchorTo: follow ? "end" : "start",
    followOnAppend: follow,
    scrollEndThreshold: AT_END_PX,
    // React 19 warns about flushSync inside its own updates; a scroll renders on the next frame.
    useFlushSync: false,
  });
  // A remounted follower (its lines already known) starts at the newest line.
  useLayoutEffect(() => {
    if (follow) rows.scrollToEnd();
  }, [follow, rows]);
  const shown = rows.getVirtualItems();
  // The rows out of the DOM stand as padding, so the list is as tall as the whole log (the
  // scrollbar is the whole log's) and the rows in it are laid out as usual, one after another.
  const above = shown[0]?.start ?? 0;
  const below = rows.getTotalSize() - (shown.at(-1)?.end ?? 0);
  return (
    // The scrolling box is around the list (the list's parent: the browser tests scroll it).
    <div className="log-scroll" role="group" aria-label={`${label} (scrollable)`} tabIndex={0} ref={box}>
      <ol className="log" aria-label={label} style={{ paddingTop: above, paddingBottom: below }}>
        {shown.map((row) => {
          const line = lines[row.index];
          return (
            <li
              key={row.key}
              ref={rows.measureElement}
              data-index={row.index}
              value={row.index + 1}
              className={`level-${line.level.toLowerCase()}`}
              aria-setsize={windowed ? lines.length : undefined}
              aria-posinset={windowed ? row.index + 1 : undefined}
            >
              <time dateTime={line.at}>{new Date(line.at).toLocaleTimeString()}</time> <span className="message">{line.message}</span>
            </li>
          );
        })}
      </ol>
    </div>
  );
}
