/**
 * The libmcr symbol table for `Deno.dlopen`, one entry per exported C function.
 * Each parameter is commented with its C type; keep this file in step with
 * `csrc/include/mcr.h` (the ABI version, struct sizes, field offsets and
 * constants are checked at load: ffi/abi.ts).
 *
 * @module
 */

/** Symbols of libmcr (see `csrc/include/mcr.h`). */
export const symbols = {
  // uint32_t mcr_abi_version(void)
  mcr_abi_version: { parameters: [], result: "u32" },
  // int64_t mcr_debug_live_objects(void)
  mcr_debug_live_objects: { parameters: [], result: "i64" },
  // int32_t mcr_abi_sizeof(uint32_t which)
  mcr_abi_sizeof: { parameters: ["u32"], result: "i32" },
  // int32_t mcr_abi_offsets(uint32_t which, uint32_t *out, uint32_t max)
  mcr_abi_offsets: { parameters: ["u32", "buffer", "u32"], result: "i32" },
  // int32_t mcr_abi_constants(uint32_t *out, uint32_t max)
  mcr_abi_constants: { parameters: ["buffer", "u32"], result: "i32" },

  // int mcr_iface_by_name(const char *name, struct mcr_iface_info *out, char *err, size_t errlen)
  mcr_iface_by_name: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "i32" },
  // int mcr_iface_addr6(uint32_t ifindex, uint8_t *out16)
  mcr_iface_addr6: { parameters: ["u32", "buffer"], result: "i32" },
  // int mcr_neigh_state(uint32_t ifindex, uint32_t dst, uint32_t *state, uint32_t *nexthop,
  //                     char *err, size_t errlen)
  mcr_neigh_state: {
    parameters: ["u32", "u32", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_neigh_state6(uint32_t ifindex, const uint8_t *dst16, uint32_t *state,
  //                      uint8_t *nexthop16, char *err, size_t errlen)
  mcr_neigh_state6: {
    parameters: ["u32", "buffer", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_iface_by_index(uint32_t ifindex, struct mcr_iface_info *out, char *name_out,
  //                        size_t name_len, char *err, size_t errlen)
  mcr_iface_by_index: {
    parameters: ["u32", "buffer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },

  // int mcr_pin_thread(uint32_t cpu, char *err, size_t errlen)
  mcr_pin_thread: { parameters: ["u32", "buffer", "usize"], result: "i32" },
  // int mcr_thread_nice(int32_t nice, char *err, size_t errlen)
  mcr_thread_nice: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // int mcr_thread_get_nice(int32_t *out, char *err, size_t errlen)
  mcr_thread_get_nice: { parameters: ["buffer", "buffer", "usize"], result: "i32" },

  // int mcr_waker_open(mcr_waker **out, char *err, size_t errlen)
  mcr_waker_open: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // int mcr_waker_fd(const mcr_waker *w)
  mcr_waker_fd: { parameters: ["pointer"], result: "i32" },
  // int mcr_waker_wake(mcr_waker *w)
  mcr_waker_wake: { parameters: ["pointer"], result: "i32" },
  // int mcr_waker_close(mcr_waker *w)
  mcr_waker_close: { parameters: ["pointer"], result: "i32" },

  // int mcr_rx_open(const struct mcr_rx_config *cfg, mcr_rx **out, char *err, size_t errlen)
  mcr_rx_open: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "i32" },
  // int mcr_rx_poll(mcr_rx *rx, int32_t timeout_ms) — blocks: call only from a Worker
  mcr_rx_poll: { parameters: ["pointer", "i32"], result: "i32" },
  // int mcr_rx_release(mcr_rx *rx)
  mcr_rx_release: { parameters: ["pointer"], result: "i32" },
  // struct mcr_rx_desc *mcr_rx_desc(mcr_rx *rx)
  mcr_rx_desc: { parameters: ["pointer"], result: "pointer" },
  // uint8_t *mcr_rx_ring_base(mcr_rx *rx)
  mcr_rx_ring_base: { parameters: ["pointer"], result: "pointer" },
  // uint64_t mcr_rx_ring_size(const mcr_rx *rx)
  mcr_rx_ring_size: { parameters: ["pointer"], result: "u64" },
  // uint32_t mcr_rx_batch_max(const mcr_rx *rx)
  mcr_rx_batch_max: { parameters: ["pointer"], result: "u32" },
  // uint32_t mcr_rx_behind(const mcr_rx *rx)
  mcr_rx_behind: { parameters: ["pointer"], result: "u32" },
  // int mcr_rx_geometry(const mcr_rx *rx, uint32_t *out7)
  mcr_rx_geometry: { parameters: ["pointer", "buffer"], result: "i32" },
  // int mcr_rx_stats(mcr_rx *rx, struct mcr_rx_stats *out)
  mcr_rx_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  // int mcr_rxset_open(uint32_t max_tags, int32_t wake_fd, uint32_t coalesce_us,
  //                    uint32_t coalesce_pps, mcr_rxset **out, char *err, size_t errlen)
  mcr_rxset_open: {
    parameters: ["u32", "i32", "u32", "u32", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_rxset_add(mcr_rxset *set, mcr_rx *rx, uint32_t tag, char *err, size_t errlen)
  mcr_rxset_add: { parameters: ["pointer", "pointer", "u32", "buffer", "usize"], result: "i32" },
  // int mcr_rxset_remove(mcr_rxset *set, uint32_t tag)
  mcr_rxset_remove: { parameters: ["pointer", "u32"], result: "i32" },
  // int mcr_rxset_wait(mcr_rxset *set, int32_t timeout_ms) — blocks: call only from a Worker
  mcr_rxset_wait: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t *mcr_rxset_ready(mcr_rxset *set)
  mcr_rxset_ready: { parameters: ["pointer"], result: "pointer" },
  // int mcr_rxset_stats(const mcr_rxset *set, struct mcr_rxset_stats *out)
  mcr_rxset_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  // int mcr_rxset_close(mcr_rxset *set)
  mcr_rxset_close: { parameters: ["pointer"], result: "i32" },
  // int mcr_rx_set_filter(mcr_rx *rx, const uint32_t *dst_addrs, const uint8_t *prefix_lens,
  //                       uint32_t n, char *err, size_t errlen)
  mcr_rx_set_filter: {
    parameters: ["pointer", "buffer", "buffer", "u32", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_rx_set_ipv6(mcr_rx *rx, uint32_t on, char *err, size_t errlen)
  mcr_rx_set_ipv6: { parameters: ["pointer", "u32", "buffer", "usize"], result: "i32" },
  // int mcr_rx_close(mcr_rx *rx)
  mcr_rx_close: { parameters: ["pointer"], result: "i32" },

  // int mcr_tx_open(const struct mcr_tx_config *cfg, mcr_tx **out, char *err, size_t errlen)
  mcr_tx_open: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "i32" },
  // int mcr_tx_drain(mcr_tx *tx, int32_t timeout_ms)
  mcr_tx_drain: { parameters: ["pointer", "i32"], result: "i32" },
  // int mcr_tx_stats(mcr_tx *tx, struct mcr_tx_stats *out)
  mcr_tx_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  // int mcr_tx_set_link(mcr_tx *tx, uint32_t flags, uint32_t mtu)
  mcr_tx_set_link: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  // int mcr_tx_discard(mcr_tx *tx)
  mcr_tx_discard: { parameters: ["pointer"], result: "i32" },
  // uint32_t mcr_tx_mtu(const mcr_tx *tx)
  mcr_tx_mtu: { parameters: ["pointer"], result: "u32" },
  // int mcr_tx_close(mcr_tx *tx)
  mcr_tx_close: { parameters: ["pointer"], result: "i32" },

  // int mcr_fwd_open(uint32_t max_templates, uint32_t max_desc, mcr_fwd **out, char *err,
  //                  size_t errlen)
  mcr_fwd_open: { parameters: ["u32", "u32", "buffer", "buffer", "usize"], result: "i32" },
  // int mcr_fwd_set_template(mcr_fwd *fwd, uint32_t idx, const struct mcr_template *t,
  //                          char *err, size_t errlen)
  mcr_fwd_set_template: {
    parameters: ["pointer", "u32", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_fwd_set_template6(mcr_fwd *fwd, uint32_t idx, const struct mcr_template *t,
  //                           const uint8_t *addrs, char *err, size_t errlen)
  //   addrs: 32 bytes, IPv6 source then destination (issue 14)
  mcr_fwd_set_template6: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // struct mcr_fwd_desc *mcr_fwd_desc(mcr_fwd *fwd)
  mcr_fwd_desc: { parameters: ["pointer"], result: "pointer" },
  // struct mcr_out_counters *mcr_fwd_counters(mcr_fwd *fwd)
  mcr_fwd_counters: { parameters: ["pointer"], result: "pointer" },
  // int mcr_fwd_set_counters(mcr_fwd *fwd, void *mem, uint64_t bytes, uint32_t stride)
  mcr_fwd_set_counters: { parameters: ["pointer", "buffer", "u64", "u32"], result: "i32" },
  // int mcr_fwd_reset_counters(mcr_fwd *fwd, uint32_t idx)
  mcr_fwd_reset_counters: { parameters: ["pointer", "u32"], result: "i32" },
  // int mcr_fwd_submit(mcr_fwd *fwd, const mcr_rx *rx, uint32_t n)
  mcr_fwd_submit: { parameters: ["pointer", "pointer", "u32"], result: "i32" },
  // int mcr_fwd_submit_mem(mcr_fwd *fwd, const struct mcr_rx_desc *batch, uint32_t nbatch,
  //                        const uint8_t *base, uint64_t size, uint32_t n)
  mcr_fwd_submit_mem: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u64", "u32"],
    result: "i32",
  },
  // uint64_t mcr_fwd_invalid(const mcr_fwd *fwd)
  mcr_fwd_invalid: { parameters: ["pointer"], result: "u64" },
  // int mcr_fwd_service(mcr_fwd *fwd) — frames still queued, or -errno
  mcr_fwd_service: { parameters: ["pointer"], result: "i32" },
  // int mcr_fwd_set_link(mcr_fwd *fwd, uint32_t ifindex, uint32_t flags, uint32_t mtu)
  mcr_fwd_set_link: { parameters: ["pointer", "u32", "u32", "u32"], result: "i32" },
  // uint64_t mcr_fwd_orphans(const mcr_fwd *fwd)
  mcr_fwd_orphans: { parameters: ["pointer"], result: "u64" },
  // int mcr_fwd_close(mcr_fwd *fwd)
  mcr_fwd_close: { parameters: ["pointer"], result: "i32" },

  // int mcr_linkmon_open(int32_t wake_fd, uint32_t max_events, mcr_linkmon **out, char *err,
  //                      size_t errlen)
  mcr_linkmon_open: { parameters: ["i32", "u32", "buffer", "buffer", "usize"], result: "i32" },
  // int mcr_linkmon_dump(mcr_linkmon *m)
  mcr_linkmon_dump: { parameters: ["pointer"], result: "i32" },
  // int mcr_linkmon_wait(mcr_linkmon *m, int32_t timeout_ms) — blocks: runs on a
  // helper thread (nonblocking: the call returns a Promise)
  mcr_linkmon_wait: { parameters: ["pointer", "i32"], result: "i32", nonblocking: true },
  // struct mcr_link_event *mcr_linkmon_events(mcr_linkmon *m)
  mcr_linkmon_events: { parameters: ["pointer"], result: "pointer" },
  // int mcr_linkmon_close(mcr_linkmon *m)
  mcr_linkmon_close: { parameters: ["pointer"], result: "i32" },

  // int mcr_input_lock_take(uint32_t ifindex, mcr_input_lock **out, char *err, size_t errlen)
  mcr_input_lock_take: { parameters: ["u32", "buffer", "buffer", "usize"], result: "i32" },
  // int mcr_input_lock_release(mcr_input_lock *l)
  mcr_input_lock_release: { parameters: ["pointer"], result: "i32" },

  // uint16_t mcr_csum_partial(const uint8_t *buf, uint32_t len, uint32_t seed)
  mcr_csum_partial: { parameters: ["buffer", "u32", "u32"], result: "u16" },
  // void mcr_mcast_mac(uint32_t group, uint8_t *mac6)
  mcr_mcast_mac: { parameters: ["u32", "buffer"], result: "void" },
  // void mcr_mcast_mac6(const uint8_t *group16, uint8_t *mac6)   (33:33 + low 32 bits)
  mcr_mcast_mac6: { parameters: ["buffer", "buffer"], result: "void" },

  // int mcr_sd_notify(const char *state, char *err, size_t errlen)
  //   1 sent, 0 when $NOTIFY_SOCKET is unset, -errno on failure
  mcr_sd_notify: { parameters: ["buffer", "buffer", "usize"], result: "i32" },

  // ---- IGMP memberships packed into sockets, file-descriptor budget (issue 12) ----
  // int mcr_igmp_open(mcr_igmp **out, char *err, size_t errlen)
  mcr_igmp_open: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // int mcr_igmp_add(mcr_igmp *m, uint32_t ifindex, uint32_t group, uint32_t source, char *err,
  //                  size_t errlen)   (addresses in network byte order)
  mcr_igmp_add: {
    parameters: ["pointer", "u32", "u32", "u32", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_igmp_drop(mcr_igmp *m, uint32_t ifindex, uint32_t group, uint32_t source, char *err,
  //                   size_t errlen)
  mcr_igmp_drop: {
    parameters: ["pointer", "u32", "u32", "u32", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_igmp_close(mcr_igmp *m)
  mcr_igmp_close: { parameters: ["pointer"], result: "i32" },
  // int mcr_igmp_limits(int64_t *out3)
  mcr_igmp_limits: { parameters: ["buffer"], result: "i32" },
  // int mcr_fd_limits(uint64_t *out3, char *err, size_t errlen)
  mcr_fd_limits: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // int mcr_fd_set_soft_limit(uint64_t soft, char *err, size_t errlen)
  mcr_fd_set_soft_limit: { parameters: ["u64", "buffer", "usize"], result: "i32" },

  // ---- UDP port claims of unicast inputs (issue 13) ----
  // int mcr_udp_claim_open(uint32_t ifindex, uint32_t addr, uint32_t port, mcr_udp_claim **out,
  //                        char *err, size_t errlen)   (addr in network byte order, port in host)
  mcr_udp_claim_open: {
    parameters: ["u32", "u32", "u32", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_udp_claim_close(mcr_udp_claim *c)
  mcr_udp_claim_close: { parameters: ["pointer"], result: "i32" },

  // ---- MLD memberships (issue 14): addresses 16 bytes as on the wire; source NULL/:: = any ----
  // int mcr_mld_open(mcr_mld **out, char *err, size_t errlen)
  mcr_mld_open: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // int mcr_mld_add(mcr_mld *m, uint32_t ifindex, const uint8_t *group, const uint8_t *source,
  //                 char *err, size_t errlen)
  mcr_mld_add: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_mld_drop(mcr_mld *m, uint32_t ifindex, const uint8_t *group, const uint8_t *source,
  //                  char *err, size_t errlen)
  mcr_mld_drop: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
  },
  // int mcr_mld_close(mcr_mld *m)
  mcr_mld_close: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's symbol functions. */
export type McrSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
