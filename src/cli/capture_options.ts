/**
 * The options of `mcr ctl capture` (program.ts builds the command tree and
 * adds them to the command; src/client/capture.ts carries it out).
 *
 * @module
 */
import type { Command } from "commander";

/** What `mcr ctl capture` does, for its help and the man page. */
export const CAPTURE_SUMMARY =
  "copy the frames a rule matches, as received, to a pcapng file (Wireshark, tshark)";

/** Options of `mcr ctl capture`, keyed by their long flag. */
export interface CaptureValues {
  input?: string;
  count?: string;
  seconds?: string;
  write?: string;
}

/** Add `capture`'s argument and options to its command. */
export function captureOptions(cmd: Command): Command {
  return cmd
    .argument("<RULE>", "the rule (by name, else by id)")
    .option("-w, --write <FILE>", 'the pcapng file ("-" or none: stdout, not a terminal)')
    .option("--count <N>", "stop after N frames (default 1000)")
    .option("--seconds <S>", "stop after S seconds (default 60)")
    .option("--input <N>", "which of the rule's inputs (a rule has one today: 0)")
    .addHelpText(
      "after",
      "\nForwarding never waits for a capture: frames that do not fit the capture buffer are " +
        "counted as capture drops and reported at the end.",
    );
}
