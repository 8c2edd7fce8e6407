// Small shared pieces: permission-aware buttons, user errors, log lines, sizes and dates.
import { useEffect, useRef, type ButtonHTMLAttributes, type ReactNode } from "react";
import type { Role } from "./gql/graphql";
import { reasonId, refusal, useSession } from "./session";

export type UserErrorShape = { code: string; message: string; field?: string | null };

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

/** Log lines; with `follow`, it keeps the newest line in view while the reader has not scrolled up. */
export function LogView({ lines, label, follow = false }: { lines: readonly LogLine[]; label: string; follow?: boolean }) {
  const list = useRef<HTMLOListElement>(null);
  const atEnd = useRef(true);
  useEffect(() => {
    const element = list.current;
    if (follow && element && atEnd.current) element.scrollTop = element.scrollHeight;
  }, [follow, lines]);
  return (
    <ol
      className="log"
      aria-label={label}
      tabIndex={0}
      ref={list}
      onScroll={(e) => {
        const element = e.currentTarget;
        atEnd.current = element.scrollTop + element.clientHeight >= element.scrollHeight - 8;
      }}
    >
      {lines.map((line) => (
        <li key={line.sequence} className={`level-${line.level.toLowerCase()}`}>
          <time dateTime={line.at}>{new Date(line.at).toLocaleTimeString()}</time> <span className="message">{line.message}</span>
        </li>
      ))}
    </ol>
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

/** Top-level GraphQL errors (a lost connection, a refused token) as one line. */
export function topLevel(error: { message: string } | undefined): string[] {
  return error ? [error.message.replace(/^\[(GraphQL|Network)\] /, "")] : [];
}
