// Small shared pieces: permission-aware buttons, user errors, sizes and dates.
import { useState, type ButtonHTMLAttributes, type ReactNode } from "react";
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
