// A schedule's time in words ("daily at 02:30, Europe/Berlin"), and the time picker's presets
// as cron expressions and back. The presets cover what most backup jobs use; any other cron is
// "custom" and said in words by cronstrue.
import cronstrue from "cronstrue";

export type Repeat = "daily" | "weekdays" | "weekly" | "custom";
export type Picked = { repeat: Repeat; time: string; weekday: number };

export const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"] as const;

// minute hour * * (every day | Monday to Friday | one day of the week), nothing else.
const PRESET = /^(\d{1,2}) (\d{1,2}) \* \* (\*|1-5|[0-6])$/;

const two = (n: number) => n.toString().padStart(2, "0");

/** The picker's reading of a cron expression: a preset when it is one, else custom. */
export function pickedOf(cron: string | null | undefined): Picked {
  const match = PRESET.exec((cron ?? "").trim());
  const minute = match ? Number(match[1]) : NaN;
  const hour = match ? Number(match[2]) : NaN;
  if (!match || minute > 59 || hour > 23) return { repeat: "custom", time: "03:00", weekday: 1 };
  const time = `${two(hour)}:${two(minute)}`;
  if (match[3] === "*") return { repeat: "daily", time, weekday: 1 };
  if (match[3] === "1-5") return { repeat: "weekdays", time, weekday: 1 };
  return { repeat: "weekly", time, weekday: Number(match[3]) };
}

/** The cron expression of a preset (null for custom: the cron field says it). */
export function cronOf(picked: Picked): string | null {
  const [hour, minute] = picked.time.split(":").map(Number);
  if (picked.repeat === "custom" || !Number.isInteger(hour) || !Number.isInteger(minute)) return null;
  const day = picked.repeat === "daily" ? "*" : picked.repeat === "weekdays" ? "1-5" : String(picked.weekday);
  return `${minute} ${hour} * * ${day}`;
}

/** When a schedule runs, in words: "daily at 02:30, Europe/Berlin", "after changes (quiet 5 min)". */
export function scheduleInWords(cron: string | null | undefined, timeZone: string, quietSeconds?: number | null): string {
  const parts: string[] = [];
  if (cron) parts.push(`${cronInWords(cron)}, ${timeZone}`);
  if (quietSeconds != null) parts.push(`after changes (quiet ${durationInWords(quietSeconds)})`);
  return parts.join(" and ") || "never (no cron and no runs after changes)";
}

export function cronInWords(cron: string): string {
  const picked = pickedOf(cron);
  if (picked.repeat === "daily") return `daily at ${picked.time}`;
  if (picked.repeat === "weekdays") return `weekdays at ${picked.time}`;
  if (picked.repeat === "weekly") return `weekly on ${WEEKDAYS[picked.weekday]} at ${picked.time}`;
  try {
    const words = cronstrue.toString(cron, { use24HourTimeFormat: true, verbose: false });
    return words.charAt(0).toLowerCase() + words.slice(1);
  } catch {
    return `cron ${cron}`;
  }
}

function durationInWords(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** What a verification schedule reads each run, in words: "10% each run, skips verified within 7 days". */
export function verificationInWords(readPercent: number, outdatedAfterDays: number, copies: boolean): string {
  const parts = [readPercent >= 100 ? "everything each run" : `${readPercent}% each run`];
  if (outdatedAfterDays > 0) parts.push(`skips verified within ${outdatedAfterDays} ${outdatedAfterDays === 1 ? "day" : "days"}`);
  if (!copies) parts.push("restore points only");
  return parts.join(", ");
}
