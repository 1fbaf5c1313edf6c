/**
 * The FFI boundary: typed wrappers over libmcr, one file per handle type.
 * Each wrapper owns its C handle, has an idempotent `close()` and
 * `[Symbol.dispose]`, and creates its zero-copy views of C-owned memory
 * (ring mapping, descriptor arrays, counters) exactly once. Addresses are
 * unsigned 32-bit numbers in host order (as `src/common/net.ts` uses); the wrappers
 * convert to network byte order at the C boundary. Loading is lazy.
 *
 * @module
 */
export { FanoutMode, FwdFlag, RxFlag } from "./abi.ts";
export { Errno, errnoName, McrError, McrLoadError } from "./errors.ts";
export { ifaceAddr6, ifaceByName, type IfaceInfo } from "./iface.ts";
export {
  type FdLimits,
  fdLimits,
  liveObjects,
  pinThread,
  sdNotify,
  setSoftFdLimit,
  setThreadNice,
  threadNice,
} from "./system.ts";
export { Waker } from "./waker.ts";
export {
  type FanoutModeName,
  type LinkLayout,
  RX_DESC_WORDS,
  RxDescWord,
  type RxGeometry,
  type RxOptions,
  RxRing,
  type RxStats,
} from "./rx_ring.ts";
export { RX_READY_WORDS, RxSet, type RxSetOptions, type RxSetStats } from "./rx_set.ts";
export { type TxOptions, TxRing, type TxStats } from "./tx_ring.ts";
export {
  Forwarder,
  FWD_DESC_WORDS,
  FwdDescWord,
  OUT_COUNTER_WORDS,
  OutCounter,
  type Template,
} from "./forwarder.ts";
export { type IgmpLimits, igmpLimits, IgmpSocket } from "./igmp.ts";
export { MldSocket } from "./mld.ts";
export { type LinkEvent, LinkMonitor } from "./link_monitor.ts";
export { InputLock } from "./input_lock.ts";
export { UdpClaim } from "./udp_claim.ts";
export { type NextHop, nextHop, type NextHop6, nextHop6, Nud } from "./neigh.ts";
export { hton32 } from "./util.ts";
