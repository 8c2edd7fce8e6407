// Who is signed in, and what their token's role allows.
import { createContext, useContext } from "react";
import type { Role } from "./gql/graphql";

const RANK: Record<Role, number> = { VIEWER: 0, OPERATOR: 1, ADMIN: 2 };

export type Session = {
  token: string;
  name: string | null;
  role: Role;
  /** Bumped each time the websocket is (re)connected: its subscriptions start only then, and
   * what happened before they did (an operation that ended since the list was read) was told to
   * nobody, so a list that relies on the events reads again. */
  connects: number;
  /** Bumped after the websocket reconnects: lists refetch what they may have missed. */
  reconnects: number;
  /** Bumped when an operation finishes: lists its result changes refetch. */
  finished: number;
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}

/** Why this role may not do what `needed` may, or null when it may. */
export function refusal(role: Role, needed: Role): string | null {
  if (RANK[role] >= RANK[needed]) return null;
  return needed === "ADMIN" ? "Needs an admin token" : "Needs an operator token";
}

/** The id of the note that says why (buttons point at it with aria-describedby). */
export function reasonId(needed: Role): string {
  return needed === "ADMIN" ? "why-admin" : "why-operator";
}
