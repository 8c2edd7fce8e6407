// Small shared pieces: permission-aware buttons, user errors, sizes and dates.
import { useState, type ButtonHTMLAttributes, type ReactNode } from "react";
import type { Role } from "./gql/graphql";
import { reasonId, refusal, useSession } from "./session";

export type UserErrorShape = { code: string; message: string; field?: string | null };

/** "Delete", then "Delete for good" or "Keep": a deletion asked twice (admin only), styled as
 * dangerous (red outline, then solid red for the second click). */
export function DeleteTwice({ onDelete }: { onDelete: () => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  return confirming ? (
    <>
      <RoleButton
        needs="ADMIN"
        className="danger"
        onClick={async () => {
          setConfirming(false);
          await onDelete();
        }}
      >
        Delete for good
      </RoleButton>
      <button type="button" className="secondary" onClick={() => setConfirming(false)}>
        Keep
      </button>
    </>
  ) : (
    <RoleButton needs="ADMIN" className="danger-quiet" onClick={() => setConfirming(true)}>
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

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]] as const;

/** A time relative to now, as people say it: "3 hours ago", "in 5 hours", "yesterday" (the
 * browser's Intl.RelativeTimeFormat, in its language); under a minute, "just now". */
export function relative(iso: string, now: number = Date.now()): string {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return RELATIVE.format(Math.trunc(seconds / size), unit);
  }
  return seconds < 0 ? "just now" : "in less than a minute";
}

/** A time in relative words, the exact time on hover (and in `dateTime` for machines). */
export function Ago({ iso }: { iso: string }) {
  return (
    <time dateTime={iso} title={when(iso)}>
      {relative(iso)}
    </time>
  );
}

/** A restore point's label as a person reads it: a safety restore point made before this page's
 * servers labelled them in words ("Before applying rp_… (nightly)") says "Before applying 'nightly'". */
export function pointLabel(label: string): string {
  const old = /^Before applying rp_[0-9a-z]+ \((.*?)\)?$/s.exec(label); // cut short at 200 characters: no ")"
  return old ? `Before applying '${old[1]}'` : label;
}

/** Bring the reader to an element of the page (a schedule, a location, a restore point's row):
 * scrolled into view and focused (it has tabIndex -1), so a keyboard user is there too. */
export function bringTo(id: string): boolean {
  const target = document.getElementById(id);
  if (!target) return false;
  target.scrollIntoView({ block: "center" });
  target.focus({ preventScroll: true });
  return true;
}

/** Top-level GraphQL errors (a lost connection, a refused token) as one line. */
export function topLevel(error: { message: string } | undefined): string[] {
  return error ? [error.message.replace(/^\[(GraphQL|Network)\] /, "")] : [];
}
