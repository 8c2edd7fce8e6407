// Small shared pieces: permission-aware buttons, user errors, log lines, sizes and dates.
import { useLayoutEffect, useRef, useState, type ButtonHTMLAttributes, type ReactNode } from "react";
import type { Role } from "./gql/graphql";
import { reasonId, refusal, useSession } from "./session";

export type UserErrorShape = { code: string; message: string; field?: string | null };

/** "Delete", then "Delete for good" or "Keep": a deletion asked twice (admin only). */
export function DeleteTwice({ onDelete }: { onDelete: () => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  return confirming ? (
    <>
      <RoleButton
        needs="ADMIN"
        onClick={async () => {
          setConfirming(false);
          await onDelete();
        }}
      >
        Delete for good
      </RoleButton>
      <button type="button" onClick={() => setConfirming(false)}>
        Keep
      </button>
    </>
  ) : (
    <RoleButton needs="ADMIN" onClick={() => setConfirming(true)}>
      Delete
    </RoleButton>
  );
}

/** A button that is disabled, with the reason, when the token's role may not use it. */
export function RoleButton({ needs, children, disabled, title, ...rest }: ButtonHTMLAttributes<HTMLButtonElement> & { needs: Role; children: ReactNode }) {
  const { role } = useSession();
  const why = refusal(role, needs);
  return (
    <button
      type="button"
      {...rest}
      disabled={disabled || why !== null}
      title={why ?? title}
      aria-describedby={why ? reasonId(needs) : rest["aria-describedby"]}
    >
      {children}
    </button>
  );
}

/** The userErrors of a payload, where the page shows them (next to what caused them). */
export function Errors({ errors, id }: { errors: readonly (UserErrorShape | string)[]; id?: string }) {
  if (errors.length === 0) return null;
  return (
    <div className="errors" role="alert" id={id}>
      {errors.map((e, i) => (
        <p key={i}>{typeof e === "string" ? e : `${e.message} (${e.code})`}</p>
      ))}
    </div>
  );
}

export type LogLine = { sequence: number; at: string; level: string; message: string };

// A log longer than this is windowed: only the rows in view (and a few around) are in the DOM,
// so a 10,000-line log costs what 30 lines cost. Rows then have one fixed height (one line each).
const WINDOW_FROM = 200;
const ROW_PX = 18;
const OVERSCAN = 10;

/** Log lines; with `follow`, it keeps the newest line in view while the reader has not scrolled up. */
export function LogView({ lines, label, follow = false }: { lines: readonly LogLine[]; label: string; follow?: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const atEnd = useRef(true);
  const [view, setView] = useState({ top: 0, height: 12 * 16 });
  const windowed = lines.length > WINDOW_FROM;
  useLayoutEffect(() => {
    const element = box.current;
    if (follow && element && atEnd.current) element.scrollTop = element.scrollHeight;
    if (element && windowed) setView((v) => (v.top === element.scrollTop && v.height === element.clientHeight ? v : { top: element.scrollTop, height: element.clientHeight }));
  }, [follow, lines, windowed]);
  let first = 0;
  let end = lines.length;
  if (windowed) {
    first = Math.max(0, Math.floor(view.top / ROW_PX) - OVERSCAN);
    end = Math.min(lines.length, Math.ceil((view.top + view.height) / ROW_PX) + OVERSCAN);
  }
  const shown = windowed ? lines.slice(first, end) : lines;
  return (
    // The scrolling box is around the list, so that the padding standing in for the rows out
    // of view makes the list as tall as the whole log (the scrollbar is the whole log's).
    <div
      className="log-scroll"
      role="group"
      aria-label={`${label} (scrollable)`}
      tabIndex={0}
      ref={box}
      onScroll={(e) => {
        const element = e.currentTarget;
        atEnd.current = element.scrollTop + element.clientHeight >= element.scrollHeight - 8;
        if (windowed) setView({ top: element.scrollTop, height: element.clientHeight });
      }}
    >
      <ol
        className={windowed ? "log windowed" : "log"}
        aria-label={label}
        style={windowed ? { paddingTop: first * ROW_PX, paddingBottom: (lines.length - end) * ROW_PX } : undefined}
      >
        {shown.map((line, i) => (
          <li
            key={line.sequence}
            className={`level-${line.level.toLowerCase()}`}
            aria-setsize={windowed ? lines.length : undefined}
            aria-posinset={windowed ? first + i + 1 : undefined}
            title={windowed ? line.message : undefined}
          >
            <time dateTime={line.at}>{new Date(line.at).toLocaleTimeString()}</time> <span className="message">{line.message}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

export function bytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function when(iso: string): string {
  return new Date(iso).toLocaleString();
}

/** How far ahead a time is, in words: "in 3 days", "in 5 hours", "in 2 minutes" ("now" once past). */
export function inWords(iso: string, now: number = Date.now()): string {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  if (seconds <= 0) return "now";
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]] as const) {
    const count = Math.floor((seconds + 60) / size); // a minute's slack: "7 days" just set reads "in 7 days"
    if (count >= 1) return `in ${count} ${unit}${count === 1 ? "" : "s"}`;
  }
  return "in less than a minute";
}

/** Top-level GraphQL errors (a lost connection, a refused token) as one line. */
export function topLevel(error: { message: string } | undefined): string[] {
  return error ? [error.message.replace(/^\[(GraphQL|Network)\] /, "")] : [];
}
