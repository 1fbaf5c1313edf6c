/**
 * The prose of mcr's command line that is not one command's or option's
 * description: exit codes, signals, permissions, environment, files. Written
 * once here; `--help` (program.ts) and the man pages (man.ts) both render it.
 *
 * @module
 */
import { DEFAULT_CONTROL_SOCKET } from "../control/protocol.ts";

/** Exit codes of every mcr command. */
export const EXIT = { ok: 0, invalid: 1, usage: 2, runtime: 3 } as const;

/** A term and what it means (a definition list). */
export type Entry = readonly [term: string, text: string];

/** Exit status, for mcr(8) and `mcr --help`. */
export const EXIT_STATUS: readonly Entry[] = [
  [String(EXIT.ok), "success: the configuration is valid, the relay stopped cleanly"],
  [
    String(EXIT.invalid),
    "invalid configuration (every problem listed with its rule, field and why); for ctl: " +
    "the daemon refused the request, or check found problems",
  ],
  [String(EXIT.usage), "usage error (unknown command or option, missing argument)"],
  [
    String(EXIT.runtime),
    "runtime failure (libmcr missing, permission denied, no interface could be opened); for " +
    "ctl and top: the daemon could not be reached",
  ],
];

/** Signals and systemd, for mcr(8) and `mcr --help`. */
export const SIGNALS =
  "SIGHUP re-reads the config file and applies only the difference (as ctl reload). " +
  "SIGINT and SIGTERM stop the relay cleanly and print the final counters. Under systemd " +
  "(Type=notify) the relay reports READY=1 once forwarding, RELOADING=1/READY=1 around " +
  "reloads and STOPPING=1 on shutdown.";

/** Privileges and Deno permissions, for mcr(8). */
export const PERMISSIONS =
  "The relay needs CAP_NET_RAW (AF_PACKET sockets); root is not required. ctl and top need " +
  "read and write access to the control socket (owner, or a member of its group: it is " +
  "0660). The installed mcr command runs each command with the Deno permissions it needs: " +
  "the relay --allow-ffi (libmcr) with read, env, write and net; check, schema, man and " +
  "completion --allow-read only; ctl and top read, write and net on their control socket only.";

/** Environment variables mcr reads. */
export const ENVIRONMENT: readonly Entry[] = [
  ["MCR_LIB", "path of libmcr.so to load instead of the one installed with mcr"],
  ["NOTIFY_SOCKET", "systemd's notification socket (set by systemd for Type=notify)"],
  [
    "MCR_DENO",
    "the installed command only: the deno binary to run mcr with (default: the one installed " +
    "beside it)",
  ],
];

/** Files mcr uses. */
export const FILES: readonly Entry[] = [
  ["/etc/mcr/rules.json", "the rules of mcr.service (see mcr.json(5))"],
  ["/etc/mcr/NETNS.json", "the rules of mcr@NETNS.service, a relay in network namespace NETNS"],
  [DEFAULT_CONTROL_SOCKET, "the default control socket (in a 0750 directory)"],
  ["/usr/lib/mcr/libmcr.so", "the C library the relay loads (packaged layout)"],
];

/** Manual pages `mcr man` prints: name → section and one-line summary. */
export const MAN_PAGES = {
  "mcr": { section: 8, summary: "userspace IPv4 multicast relay for Linux" },
  "mcr.json": { section: 5, summary: "mcr relay configuration (rules.json)" },
} as const;

/** A page of {@link MAN_PAGES}. */
export type ManPage = keyof typeof MAN_PAGES;

/** The example configuration shown in mcr.json(5). */
export const EXAMPLE_CONFIG = {
  ttl: 1,
  rules: [
    {
      name: "cam1",
      input: { interface: "eth0", group: "239.1.1.1", port: 5001 },
      outputs: [
        { interface: "eth1", group: "239.10.1.1", port: 6001 },
        { interface: "eth2", group: "10.0.5.20", port: 7001, ttl: 4 },
      ],
    },
  ],
};

/** Help text width (columns). */
const HELP_WIDTH = 80;

/** `text` wrapped at spaces to `width` columns. */
function wrap(text: string, width = HELP_WIDTH): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join("\n");
}

function entries(title: string, list: readonly Entry[]): string {
  const w = Math.max(...list.map(([t]) => t.length));
  const pad = " ".repeat(w + 4);
  const item = ([t, d]: Entry) =>
    `  ${t.padEnd(w)}  ${wrap(d, HELP_WIDTH - pad.length).replaceAll("\n", `\n${pad}`)}`;
  return `${title}:\n${list.map(item).join("\n")}`;
}

/** Text after `--help` of the commands that have more to say. */
export const HELP_FOOTER = {
  mcr: [
    wrap("Run `mcr COMMAND --help` for a command's options; `mcr --config FILE` runs the relay."),
    "",
    wrap(SIGNALS),
    "",
    entries("Exit codes", EXIT_STATUS),
    "",
    "More: man mcr, man mcr.json (or `mcr man`).",
  ].join("\n"),
  ctl: wrap(
    "Exit codes: 0 ok, 1 refused by the daemon (or check found problems), 2 usage error, " +
      "3 daemon unreachable.",
  ),
};
