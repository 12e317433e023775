// What to say to one DNS query, without any socket: answer from the records, or hand the query
// to the forwarder. Kept apart from the server so the decisions are plain functions of bytes in,
// bytes out.
import dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, Packet, Question } from "dns-packet";
import type { DnsRecords } from "./records.js";
import type { DnsProtocol } from "./upstream.js";

export type Decision =
  /** Not a DNS query we can read: say nothing (UDP) or drop the connection (TCP). */
  | { kind: "malformed" }
  | { kind: "local"; reply: Buffer; question: Question; answers: number }
  | { kind: "forward"; query: DecodedPacket };

const OPCODE_QUERY = 0;
const RCODE_SERVFAIL = 2;
/** The most a UDP client without EDNS accepts (RFC 1035). */
const UDP_PLAIN_MAX = 512;

function opcodeOf(p: DecodedPacket): number {
  return ((p.flags ?? 0) >> 11) & 0x0f;
}

/** "4.3.2.1.in-addr.arpa" → "1.2.3.4"; undefined for anything else (IPv6 PTRs are forwarded). */
export function ptrToIpv4(qname: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa\.?$/i.exec(qname);
  if (!m) return undefined;
  const octets = [m[4], m[3], m[2], m[1]].map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.join(".");
}

/**
 * The reply header every answer of ours carries: same id and question, recursion available
 * (the daemon does recurse, through the host's resolvers), RD echoed as RFC 1035 asks.
 */
function replyTo(query: DecodedPacket, answers: Answer[], rcode = 0): Packet {
  return {
    type: "response",
    id: query.id,
    flags: dnsPacket.RECURSION_AVAILABLE | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
    questions: query.questions,
    answers,
  };
}

/**
 * Encode `reply`, cutting it to `max` bytes when needed the way resolvers expect: extra sections
 * go first, then answers from the end, and TC tells the client to ask again over TCP. The OPT
 * record stays, it is what told us the client's size.
 */
function encodeWithin(reply: Packet, max: number): Buffer {
  const whole = dnsPacket.encode(reply);
  if (whole.length <= max) return whole;
  const cut: Packet = {
    ...reply,
    flags: (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
    authorities: [],
    additionals: (reply.additionals ?? []).filter((a) => a.type === "OPT"),
    answers: [...(reply.answers ?? [])],
  };
  let buf = dnsPacket.encode(cut);
  while (buf.length > max && cut.answers && cut.answers.length > 0) {
    cut.answers.pop();
    buf = dnsPacket.encode(cut);
  }
  return buf;
}

/** The largest UDP answer the client said it takes (EDNS), never below the plain 512. */
function udpLimitOf(query: DecodedPacket): number {
  const opt = (query.additionals ?? []).find((a) => a.type === "OPT");
  const size = opt && opt.type === "OPT" ? opt.udpPayloadSize : 0;
  return Math.max(UDP_PLAIN_MAX, Math.min(size, 65535));
}

function localAnswers(q: Question, clientIp: string, records: DnsRecords, ttl: number): Answer[] | undefined {
  if (q.class !== undefined && q.class !== "IN") return undefined;
  if (q.type === "PTR") {
    const ip = ptrToIpv4(q.name);
    const target = ip === undefined ? undefined : records.reverse(clientIp, ip);
    return target === undefined ? undefined : [{ type: "PTR", name: q.name, ttl, data: target }];
  }
  const ips = records.lookup(clientIp, q.name);
  if (q.type === "A" && ips) return ips.map((ip) => ({ type: "A", name: q.name, ttl, data: ip }));
  // A local name with no record of this type: an empty NOERROR, so the client neither waits on
  // the host's DNS for an AAAA nor gets some outside host that happens to bear the same name.
  if (records.isLocalName(clientIp, q.name)) return [];
  return undefined;
}

export function decide(
  msg: Buffer,
  clientIp: string,
  records: DnsRecords,
  ttl: number,
  protocol: DnsProtocol,
): Decision {
  let query: DecodedPacket;
  try {
    query = dnsPacket.decode(msg);
  } catch {
    return { kind: "malformed" };
  }
  // Never answer an answer: that is how two servers end up talking to each other forever.
  if (query.type !== "query") return { kind: "malformed" };
  const questions = query.questions ?? [];
  if (opcodeOf(query) !== OPCODE_QUERY || questions.length !== 1) return { kind: "forward", query };
  const answers = localAnswers(questions[0], clientIp, records, ttl);
  if (answers === undefined) return { kind: "forward", query };
  // No OPT in our answers (we speak no EDNS), so over UDP they must fit the plain limit.
  const reply = encodeWithin(replyTo(query, answers), protocol === "udp" ? UDP_PLAIN_MAX : 65535);
  return { kind: "local", reply, question: questions[0], answers: answers.length };
}

export function servfail(query: DecodedPacket): Buffer {
  try {
    return dnsPacket.encode(replyTo(query, [], RCODE_SERVFAIL));
  } catch {
    // A question dns-packet reads but cannot write back: the header alone still tells the
    // client to give up on us rather than wait.
    return dnsPacket.encode({ ...replyTo(query, [], RCODE_SERVFAIL), questions: [] });
  }
}

/**
 * A forwarded answer as the UDP client can take it. Usually the bytes as they came, since the
 * resolver saw the client's own size; only an answer fetched again over TCP after TC can be too
 * big, and that one is cut the way a resolver would cut it.
 */
export function relayOverUdp(answer: Buffer, query: DecodedPacket): Buffer {
  const max = udpLimitOf(query);
  if (answer.length <= max) return answer;
  try {
    return encodeWithin(dnsPacket.decode(answer), max);
  } catch {
    return answer;
  }
}
