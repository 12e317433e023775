// Addresses of one network: never handed out twice while held, the network, broadcast and
// gateway addresses reserved. Its state is a plain object so the owner can persist it with the
// network (the daemon writes it atomically with the network record), which keeps allocation
// right across restarts.
import { conflict, invalid } from "../../../shared/errors.js";
import { contains, formatIp, formatSubnet, parseIp, size, within, type Subnet } from "./cidr.js";

export interface AddressPoolState {
  subnet: string;
  gateway: string;
  /** Optional --ip-range: dynamic allocation only picks from it. */
  range?: string;
  /** address → owner (a container id, or "gateway"). */
  allocated: Record<string, string>;
  /** Where the next search starts: addresses are reused as late as possible, like Docker. */
  next: number;
}

export class AddressPool {
  constructor(
    readonly state: AddressPoolState,
    private readonly subnet: Subnet,
    private readonly range: Subnet,
  ) {}

  /** A new pool: the gateway is the first host address unless given. */
  static create(subnet: Subnet, opts: { gateway?: string; range?: Subnet } = {}): AddressPool {
    if (size(subnet) < 4)
      throw invalid(`subnet ${formatSubnet(subnet)} is too small: use a prefix of /30 or shorter`);
    const gateway = opts.gateway ?? formatIp(subnet.base + 1);
    const gw = parseIp(gateway, "gateway");
    if (!contains(subnet, gw) || gw === subnet.base || gw === subnet.base + size(subnet) - 1) {
      throw invalid(`gateway ${gateway} is not a host address of subnet ${formatSubnet(subnet)}`);
    }
    const range = opts.range ?? subnet;
    if (!within(range, subnet)) {
      throw invalid(`ip-range ${formatSubnet(range)} is not inside subnet ${formatSubnet(subnet)}`);
    }
    const state: AddressPoolState = {
      subnet: formatSubnet(subnet),
      gateway,
      range: opts.range ? formatSubnet(opts.range) : undefined,
      allocated: { [gateway]: "gateway" },
      next: range.base,
    };
    return new AddressPool(state, subnet, range);
  }

  static restore(state: AddressPoolState, subnet: Subnet, range?: Subnet): AddressPool {
    return new AddressPool(state, subnet, range ?? subnet);
  }

  private usable(ip: number): boolean {
    return (
      contains(this.subnet, ip) && ip !== this.subnet.base && ip !== this.subnet.base + size(this.subnet) - 1
    );
  }

  /** Hand out `preferred` (for --ip) or the next free address of the range; 409 when none is free. */
  allocate(owner: string, preferred?: string): string {
    if (preferred !== undefined) {
      const ip = parseIp(preferred, "--ip address");
      if (!this.usable(ip))
        throw invalid(`--ip ${preferred} is not a host address of subnet ${this.state.subnet}`);
      const holder = this.state.allocated[preferred];
      if (holder !== undefined) throw conflict(`address ${preferred} is already in use by ${holder}`);
      this.state.allocated[preferred] = owner;
      return preferred;
    }
    const n = size(this.range);
    for (let i = 0; i < n; i++) {
      const ip = this.range.base + ((this.state.next - this.range.base + i) % n);
      const text = formatIp(ip);
      if (!this.usable(ip) || this.state.allocated[text] !== undefined) continue;
      this.state.allocated[text] = owner;
      this.state.next = ip + 1;
      return text;
    }
    throw conflict(
      `no free address in ${this.state.range ?? this.state.subnet}: remove containers from the network or use a larger subnet`,
    );
  }

  release(address: string): void {
    if (this.state.allocated[address] !== "gateway") delete this.state.allocated[address];
  }

  /** Addresses held by owners other than the gateway. */
  inUse(): Array<{ address: string; owner: string }> {
    return Object.entries(this.state.allocated)
      .filter(([, owner]) => owner !== "gateway")
      .map(([address, owner]) => ({ address, owner }));
  }
}
