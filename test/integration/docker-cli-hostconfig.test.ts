// The security, namespace and device HostConfig fields, each driven by the real docker CLI
// against a private shoald and observed from inside the container (docs/engine-hostconfig.md).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmod, mkdtemp, readlink, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { arch } from "node:os";
import { join } from "node:path";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";

let d: TestDaemon;
let tmp: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input);
/** A host device outside Docker's default allow-list that opens without a capability (loop driver). */
const LOOP_CONTROL = existsSync("/dev/loop-control");
/** `docker run --rm <flags> busybox sh -c <script>`. */
const run = (flags: string[], script: string) => dk(["run", "--rm", ...flags, "busybox", "sh", "-c", script]);

/**
 * A 376-byte static x86-64 program: io_uring_setup(1, &params), then exit(-result), so it
 * exits 1 on EPERM (Docker's default seccomp answer) and 253 when it got fd 3. Its source:
 *   sub $128,%rsp; mov %rsp,%rdi; xor %eax,%eax; mov $16,%ecx; rep stosq   # zeroed params
 *   mov $1,%edi; mov %rsp,%rsi; mov $425,%eax; syscall                     # io_uring_setup
 *   neg %eax; mov %eax,%edi; mov $60,%eax; syscall                          # exit
 * (as probe.s && ld -static -nostdlib -n -s --build-id=none).
 */
const IO_URING_PROBE =
  "f0VMRgIBAQAAAAAAAAAAAAIAPgABAAAAeABAAAAAAABAAAAAAAAAALgAAAAAAAAAAAAAAEAAOAABAEAAAwACAAEAAAAFAAAAeAAAAAAAAAB4AEAAAAAAAHgAQAAAAAAALgAAAAAAAAAuAAAAAAAAAAEAAAAAAAAASIHsgAAAAEiJ5zHAuRAAAADzSKu/AQAAAEiJ5ripAQAADwX32InHuDwAAAAPBQAuc2hzdHJ0YWIALnRleHQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALAAAAAQAAAAYAAAAAAAAAeABAAAAAAAB4AAAAAAAAAC4AAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAQAAAAMAAAAAAAAAAAAAAAAAAAAAAAAApgAAAAAAAAARAAAAAAAAAAAAAAAAAAAAAQAAAAAAAAAAAAAAAAAAAA==";

beforeAll(async () => {
  d = await startDaemon();
  tmp = await mkdtemp("/tmp/shoal-hostcfg-");
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("docker run: security options", () => {
  it("--security-opt no-new-privileges sets NoNewPrivs, =false leaves it off, and inspect keeps it", async () => {
    for (const [opt, want] of [
      ["no-new-privileges", "1"],
      ["no-new-privileges=true", "1"],
      ["no-new-privileges=false", "0"],
    ]) {
      const r = await run(["--security-opt", opt], "grep ^NoNewPrivs: /proc/self/status");
      expect(r.stderr, opt).toBe("");
      expect(r.stdout.trim(), opt).toBe(`NoNewPrivs:\t${want}`);
    }
    const plain = await run([], "grep ^NoNewPrivs: /proc/self/status");
    expect(plain.stdout.trim()).toBe("NoNewPrivs:\t0");
    const c = await dk(["create", "--name", "nnp", "--security-opt", "no-new-privileges", "busybox"]);
    expect(c.code).toBe(0);
    const f = await dk(["inspect", "--format", "{{json .HostConfig.SecurityOpt}}", "nnp"]);
    expect(f.stdout.trim()).toBe('["no-new-privileges"]');
    await dk(["rm", "nnp"]);
  });

  it("seccomp=unconfined runs without a filter and lets a blocked call through", async () => {
    const r = await run(
      ["--security-opt", "seccomp=unconfined"],
      "grep ^Seccomp: /proc/self/status; unshare -U true && echo unshared",
    );
    expect(r.stdout).toBe("Seccomp:\t0\nunshared\n");
    const confined = await run([], "grep ^Seccomp: /proc/self/status; unshare -U true && echo unshared");
    expect(confined.stdout).toBe("Seccomp:\t2\n");
    expect(confined.stderr).toMatch(/Operation not permitted/);
  });

  it.skipIf(arch() !== "x64")(
    "the default profile blocks io_uring (Docker 25+); unconfined does not",
    async () => {
      const dir = join(tmp, "probe");
      await rm(dir, { recursive: true, force: true });
      await import("node:fs/promises").then((fs) => fs.mkdir(dir));
      await writeFile(join(dir, "io-uring"), Buffer.from(IO_URING_PROBE, "base64"));
      await chmod(join(dir, "io-uring"), 0o755);
      const confined = await dk(["run", "--rm", "-v", `${dir}:/probe:ro`, "busybox", "/probe/io-uring"]);
      expect(confined.code).toBe(1); // EPERM from the filter
      const host = await import("node:fs/promises").then((fs) =>
        fs.readFile("/proc/sys/kernel/io_uring_disabled", "utf8").catch(() => "0"),
      );
      if (host.trim() === "0") {
        const open = await dk([
          "run",
          "--rm",
          "--security-opt",
          "seccomp=unconfined",
          "-v",
          `${dir}:/probe:ro`,
          "busybox",
          "/probe/io-uring",
        ]);
        expect(open.code).toBe(253); // io_uring_setup returned fd 3
      }
    },
  );

  it("seccomp=<file>: the CLI sends the profile, converted as moby does; a bad one is a 400", async () => {
    const profile = join(tmp, "no-mkdir.json");
    // Docker's format: archMap, a capability-gated rule, and an ERRNO rule for mkdir(at).
    await writeFile(
      profile,
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] }],
        syscalls: [
          { names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
          { names: ["chroot"], action: "SCMP_ACT_ERRNO", includes: { caps: ["CAP_SYS_ADMIN"] } },
        ],
      }),
    );
    const r = await run(
      ["--security-opt", `seccomp=${profile}`],
      "grep ^Seccomp: /proc/self/status; mkdir /tmp/x; echo rc=$?",
    );
    expect(r.stdout).toBe("Seccomp:\t2\nrc=1\n");
    expect(r.stderr).toMatch(/Permission denied/);
    const bad = join(tmp, "bad.json");
    await writeFile(bad, '{"defaultAction": "SCMP_ACT_SOMETIMES"}');
    const refused = await run(["--security-opt", `seccomp=${bad}`], "true");
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/Decoding seccomp profile failed: defaultAction "SCMP_ACT_SOMETIMES"/);
    const notJson = await api(d.socket, "POST", "/containers/create", {
      Image: "busybox",
      HostConfig: { SecurityOpt: ["seccomp={not json"] },
    });
    expect(notJson.status).toBe(400);
    expect(notJson.json<{ message: string }>().message).toMatch(/Decoding seccomp profile failed/);
  });

  it("--security-opt systempaths=unconfined leaves /proc and /sys unmasked", async () => {
    // Docker's masked paths that this kernel has (runc skips the others), and /proc/sys read-only.
    const script =
      "grep -cE ' /(proc/(acpi|kcore|keys|latency_stats|timer_list|timer_stats|sched_debug|scsi)|sys/firmware) ' /proc/self/mountinfo; grep -c ' /proc/sys ' /proc/self/mountinfo";
    const masked = (await run([], script)).stdout.split("\n");
    expect(Number(masked[0])).toBeGreaterThan(0);
    expect(masked[1]).toBe("1");
    const open = await run(["--security-opt", "systempaths=unconfined"], script);
    expect(open.stdout).toBe("0\n0\n");
    const c = await dk(["create", "--name", "sysp", "--security-opt", "systempaths=unconfined", "busybox"]);
    expect(c.code).toBe(0);
    expect(
      (await dk(["inspect", "--format", "{{json .HostConfig.MaskedPaths}}", "sysp"])).stdout.trim(),
    ).toBe("[]");
    await dk(["rm", "sysp"]);
  });

  it("apparmor and label profiles other than what is in effect are refused by name", async () => {
    for (const opt of ["apparmor=docker-default", "label=type:svirt_apache_t"]) {
      const r = await run(["--security-opt", opt], "true");
      expect(r.code, opt).toBe(125);
      expect(r.stderr).toContain(`--security-opt ${opt} is not supported by shoal`);
    }
    const ok = await run(
      ["--security-opt", "apparmor=unconfined", "--security-opt", "label=disable"],
      "echo ok",
    );
    expect(ok.stdout).toBe("ok\n");
  });
});

describe("docker run: devices, sysctls, groups, oom score, shm", () => {
  it("--device makes the node in the container, readable, with the cgroup's permissions", async () => {
    const r = await run(
      ["--device", "/dev/zero:/dev/myzero"],
      "ls -l /dev/myzero; head -c 4 /dev/myzero | od -An -tx1",
    );
    expect(r.stderr).toBe("");
    const [ls, bytes] = r.stdout.trim().split("\n");
    expect(ls).toMatch(/^crw-rw-rw-\s.*1,\s+5\s.*\/dev\/myzero$/);
    expect(bytes.trim()).toBe("00 00 00 00");
    if (LOOP_CONTROL) {
      // The cgroup rule holds the permissions: read allowed, write refused.
      const readOnly = await run(
        ["--device", "/dev/loop-control:/dev/lc:r"],
        "(exec 3</dev/lc) && echo read; (exec 3>/dev/lc) || echo nowrite",
      );
      expect(readOnly.stdout).toBe("read\nnowrite\n");
    }
    const missing = await run(["--device", "/dev/nosuch-shoal"], "true");
    // 127, not 125: the docker CLI reads "no such file or directory" as a missing command, as with dockerd.
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/adding custom device "\/dev\/nosuch-shoal": no such file or directory/);
    const f = await dk(["create", "--name", "dev", "--device", "/dev/zero:/dev/myzero:rw", "busybox"]);
    expect(f.code).toBe(0);
    const shown = await dk([
      "inspect",
      "--format",
      "{{range .HostConfig.Devices}}{{.PathOnHost}} {{.PathInContainer}} {{.CgroupPermissions}}{{end}}",
      "dev",
    ]);
    expect(shown.stdout.trim()).toBe("/dev/zero /dev/myzero rw");
    await dk(["rm", "dev"]);
  });

  it.skipIf(!LOOP_CONTROL)("--device-cgroup-rule lets the container open a node it made", async () => {
    const script = "mknod /tmp/lc c 10 237 && (exec 3</tmp/lc) && echo opened";
    const denied = await run([], script);
    expect(denied.stdout).toBe("");
    expect(denied.stderr).toMatch(/Operation not permitted/);
    const allowed = await run(["--device-cgroup-rule", "c 10:237 r"], script);
    expect(allowed.stderr).toBe("");
    expect(allowed.stdout).toBe("opened\n");
    const bad = await run(["--device-cgroup-rule", "z 1:2 rwm"], "true");
    expect(bad.code).not.toBe(0);
  });

  it("--sysctl sets namespaced values (seen in /proc/sys) and refuses others by name", async () => {
    const r = await run(
      [
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmax=1000000",
        "--sysctl",
        "fs.mqueue.msg_max=20",
      ],
      "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max; sysctl -n kernel.shmmax",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("1\n1000000\n20\n1000000\n");
    const c = await dk(["create", "--name", "sys", "--sysctl", "net.core.somaxconn=1024", "busybox"]);
    expect(c.code).toBe(0);
    const f = await dk(["inspect", "--format", "{{.HostConfig.Sysctls}}", "sys"]);
    expect(f.stdout.trim()).toBe("map[net.core.somaxconn:1024]");
    await dk(["rm", "sys"]);
    // The CLI checks the key itself; the API answers the same for any client.
    const refused = await api(d.socket, "POST", "/containers/create", {
      Image: "busybox",
      HostConfig: { Sysctls: { "kernel.hostname": "x" } },
    });
    expect(refused.status).toBe(400);
    expect(refused.json<{ message: string }>().message).toMatch(/--sysctl kernel.hostname/);
    const hostNet = await run(["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], "true");
    expect(hostNet.code).toBe(125);
    expect(hostNet.stderr).toMatch(
      /--sysctl net.ipv4.ip_forward: it is not allowed in the host's network namespace/,
    );
  });

  it("--group-add adds numeric and named groups (from the image's /etc/group)", async () => {
    const r = await run(["--group-add", "4242", "--group-add", "nogroup", "-u", "app"], "id -G");
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split(" ").sort()).toEqual(["1000", "4242", "65534"]);
    const missing = await run(["--group-add", "nosuchgroup"], "true");
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/--group-add nosuchgroup: unable to find group nosuchgroup/);
  });

  it("--oom-score-adj reaches the process; out of range is Docker's 400", async () => {
    const r = await run(["--oom-score-adj", "321"], "cat /proc/self/oom_score_adj");
    expect(r.stdout.trim()).toBe("321");
    const bad = await run(["--oom-score-adj", "1001"], "true");
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/Invalid value 1001, range for oom score adj is \[-1000, 1000\]/);
  });

  it("--shm-size sizes /dev/shm", async () => {
    const r = await run(["--shm-size", "32m"], "df -k /dev/shm | tail -1");
    expect(r.stdout.trim().split(/\s+/)[1]).toBe(String(32 * 1024));
    const f = await dk(["create", "--name", "shm", "--shm-size", "32m", "busybox"]);
    expect(f.code).toBe(0);
    expect((await dk(["inspect", "--format", "{{.HostConfig.ShmSize}}", "shm"])).stdout.trim()).toBe(
      String(32 * 1024 * 1024),
    );
    await dk(["rm", "shm"]);
  });
});

describe("docker run: namespaces", () => {
  const nsOf = async (kind: string) => readlink(`/proc/self/ns/${kind}`);

  it("--pid host sees the host's processes; --uts host and --ipc host share those namespaces", async () => {
    const r = await run(
      ["--pid", "host"],
      `test -d /proc/${process.pid} && echo seen; readlink /proc/self/ns/pid`,
    );
    expect(r.stdout).toBe(`seen\n${await nsOf("pid")}\n`);
    const own = await run([], `test -d /proc/${process.pid} && echo seen; readlink /proc/self/ns/pid`);
    expect(own.stdout).not.toContain("seen");
    const uts = await run(["--uts", "host"], "readlink /proc/self/ns/uts; hostname");
    expect(uts.stdout).toBe(`${await nsOf("uts")}\n${(await import("node:os")).hostname()}\n`);
    const ipc = await run(["--ipc", "host"], "readlink /proc/self/ns/ipc");
    expect(ipc.stdout.trim()).toBe(await nsOf("ipc"));
    const priv = await run(["--ipc", "private"], "readlink /proc/self/ns/ipc");
    expect(priv.stdout.trim()).not.toBe(await nsOf("ipc"));
    const none = await run(["--ipc", "none"], "test -e /dev/shm || echo no-shm");
    expect(none.stdout).toBe("no-shm\n");
    const conflict = await run(["--uts", "host", "--hostname", "x"], "true");
    expect(conflict.code).toBe(125);
  });

  it("--pid container:X sees X's process; --ipc container:X shares its IPC namespace and /dev/shm", async () => {
    const x = await dk([
      "run",
      "-d",
      "--name",
      "donor",
      "--ipc",
      "shareable",
      "busybox",
      "sh",
      "-c",
      "echo hi > /dev/shm/from-donor; exec sleep 300",
    ]);
    expect(x.code).toBe(0);
    try {
      const pid = await run(["--pid", "container:donor"], "ps -o args");
      expect(pid.stdout).toContain("sleep 300");
      const donorPid = (await dk(["inspect", "--format", "{{.State.Pid}}", "donor"])).stdout.trim();
      const donorIpc = await readlink(`/proc/${donorPid}/ns/ipc`);
      const ipc = await run(
        ["--ipc", "container:donor"],
        "cat /dev/shm/from-donor; readlink /proc/self/ns/ipc",
      );
      expect(ipc.stderr).toBe("");
      expect(ipc.stdout).toBe(`hi\n${donorIpc}\n`);
      const f = await dk(["create", "--name", "joiner", "--pid", "container:donor", "busybox"]);
      expect(f.code).toBe(0);
      const id = (await dk(["inspect", "--format", "{{.Id}}", "donor"])).stdout.trim();
      expect((await dk(["inspect", "--format", "{{.HostConfig.PidMode}}", "joiner"])).stdout.trim()).toBe(
        `container:${id}`,
      );
      // The donor stopped: joining its namespace is Docker's 409.
      await dk(["stop", "-t", "0", "donor"]);
      const start = await dk(["start", "joiner"]);
      expect(start.code).not.toBe(0);
      expect(start.stderr).toMatch(/cannot join PID of a non running container: donor/);
    } finally {
      await dk(["rm", "-f", "joiner", "donor"]);
    }
    const nonShareable = await dk(["run", "-d", "--name", "private-ipc", "busybox", "sleep", "300"]);
    expect(nonShareable.code).toBe(0);
    try {
      const r = await run(["--ipc", "container:private-ipc"], "true");
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/non-shareable IPC/);
    } finally {
      await dk(["rm", "-f", "private-ipc"]);
    }
    const missing = await run(["--pid", "container:nosuch"], "true");
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/No such container: nosuch/);
  });
});

describe("docker run: mounts and networks of other containers", () => {
  it("--volumes-from sees the other container's volume and bind, :ro makes them read-only", async () => {
    const bind = join(tmp, "bound");
    await import("node:fs/promises").then((fs) => fs.mkdir(bind, { recursive: true }));
    await writeFile(join(bind, "from-bind"), "bound\n");
    const src = await dk([
      "run",
      "--name",
      "vsrc",
      "-v",
      "/data",
      "-v",
      `${bind}:/bound`,
      "busybox",
      "sh",
      "-c",
      "echo kept > /data/file",
    ]);
    expect(src.code).toBe(0);
    try {
      const r = await run(
        ["--volumes-from", "vsrc"],
        "cat /data/file /bound/from-bind; echo more > /data/other && echo wrote",
      );
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("kept\nbound\nwrote\n");
      const ro = await run(["--volumes-from", "vsrc:ro"], "cat /data/other; echo x > /data/file || echo ro");
      expect(ro.stdout).toBe("more\nro\n");
      const c = await dk(["create", "--name", "vuser", "--volumes-from", "vsrc:ro", "busybox"]);
      expect(c.code).toBe(0);
      const shown = await dk([
        "inspect",
        "--format",
        "{{json .HostConfig.VolumesFrom}} {{range .Mounts}}{{.Destination}}={{.RW}} {{end}}",
        "vuser",
      ]);
      expect(shown.stdout.trim()).toBe('["vsrc:ro"] /bound=false /data=false');
      await dk(["rm", "vuser"]);
    } finally {
      await dk(["rm", "-f", "-v", "vsrc"]);
    }
    const missing = await run(["--volumes-from", "nosuch"], "true");
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/No such container: nosuch/);
  });

  it("--mac-address gives the container's interface that MAC, on every start", async () => {
    const mac = "02:42:ac:11:99:01";
    const r = await run(["--mac-address", mac], "cat /sys/class/net/eth0/address; ip link show eth0");
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n")[0]).toBe(mac);
    expect(r.stdout).toContain(`link/ether ${mac}`);
    const c = await dk([
      "create",
      "--name",
      "mac",
      "--mac-address",
      mac,
      "busybox",
      "cat",
      "/sys/class/net/eth0/address",
    ]);
    expect(c.code).toBe(0);
    try {
      for (let i = 0; i < 2; i++) {
        const started = await dk(["start", "-a", "mac"]);
        expect(started.stdout.trim()).toBe(mac);
      }
      const shown = await dk([
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.bridge.MacAddress}}",
        "mac",
      ]);
      expect(shown.stdout.trim()).toBe(mac);
    } finally {
      await dk(["rm", "-f", "mac"]);
    }
    const bad = await run(["--mac-address", "03:00:00:00:00:01"], "true");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/03:00:00:00:00:01/);
  });

  it("--link on the default bridge: an /etc/hosts line and the link variables; the other must run", async () => {
    const db = await dk([
      "run",
      "-d",
      "--name",
      "linkdb",
      "-e",
      "SECRET=s3",
      "--expose",
      "5432",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(db.code).toBe(0);
    try {
      const ip = (
        await dk(["inspect", "--format", "{{.NetworkSettings.IPAddress}}", "linkdb"])
      ).stdout.trim();
      const id = (await dk(["inspect", "--format", "{{.Id}}", "linkdb"])).stdout.trim();
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const r = await run(
        ["--name", "linkweb", "--link", "linkdb:db"],
        'grep -w db /etc/hosts; echo "$DB_NAME $DB_PORT $DB_PORT_5432_TCP_ADDR $DB_ENV_SECRET"; ping -c1 -W2 db >/dev/null && echo reached',
      );
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(
        `${ip}\tdb ${id.slice(0, 12)} linkdb\n/linkweb/db tcp://${ip}:5432 ${ip} s3\nreached\n`,
      );
      // A rewrite of /etc/hosts (network connect) keeps the link's line.
      expect((await dk(["network", "create", "linkconn"])).code).toBe(0);
      try {
        expect(
          (await dk(["run", "-d", "--name", "linkweb2", "--link", "linkdb:db", "busybox", "sleep", "300"]))
            .code,
        ).toBe(0);
        expect((await dk(["network", "connect", "linkconn", "linkweb2"])).code).toBe(0);
        const hostsPath = (await dk(["inspect", "--format", "{{.HostsPath}}", "linkweb2"])).stdout.trim();
        const hosts = await import("node:fs/promises").then((fs) => fs.readFile(hostsPath, "utf8"));
        expect(hosts).toContain(`${ip}\tdb ${id.slice(0, 12)} linkdb\n`);
      } finally {
        await dk(["rm", "-f", "linkweb2"]);
        await dk(["network", "rm", "linkconn"]);
      }
      const c = await dk(["create", "--name", "linker", "--link", "linkdb:db", "busybox", "true"]);
      expect(c.code).toBe(0);
      expect((await dk(["inspect", "--format", "{{json .HostConfig.Links}}", "linker"])).stdout.trim()).toBe(
        '["linkdb:db"]',
      );
      await dk(["stop", "-t", "0", "linkdb"]);
      const start = await dk(["start", "linker"]);
      expect(start.code).not.toBe(0);
      expect(start.stderr).toMatch(/Cannot link to a non running container: \/linkdb AS \/linker\/db/);
    } finally {
      await dk(["rm", "-f", "linker", "linkdb"]);
    }
    const missing = await run(["--link", "nosuch:db"], "true");
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/could not get container for nosuch/);
  });

  it("--link on a user-defined network: the alias resolves in DNS for the linking container only", async () => {
    expect((await dk(["network", "create", "linknet"])).code).toBe(0);
    try {
      const db = await dk([
        "run",
        "-d",
        "--name",
        "linkdb2",
        "--network",
        "linknet",
        "busybox",
        "sleep",
        "300",
      ]);
      expect(db.code).toBe(0);
      const ip = (
        await dk(["inspect", "--format", "{{.NetworkSettings.Networks.linknet.IPAddress}}", "linkdb2"])
      ).stdout.trim();
      const linked = await run(["--network", "linknet", "--link", "linkdb2:store"], "nslookup store");
      expect(linked.stdout).toContain(`Address: ${ip}`);
      const other = await run(
        ["--network", "linknet"],
        "nslookup store >/dev/null 2>&1 && echo found || echo none",
      );
      expect(other.stdout).toBe("none\n");
    } finally {
      await dk(["rm", "-f", "linkdb2"]);
      await dk(["network", "rm", "linknet"]);
    }
  });
});

describe("shoal run takes the same flags", () => {
  it("--security-opt, --sysctl, --device, --group-add, --oom-score-adj, --pid host, --shm-size", async () => {
    const profile = join(tmp, "shoal-cli-profile.json");
    await writeFile(
      profile,
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["mkdirat", "mkdir"], action: "SCMP_ACT_ERRNO" }],
      }),
    );
    const r = await shoal(d.socket, [
      "run",
      "--rm",
      "--security-opt",
      "no-new-privileges",
      "--security-opt",
      `seccomp=${profile}`,
      "--sysctl",
      "kernel.shmmax=1000000",
      "--device",
      "/dev/zero:/dev/myzero:r",
      "--group-add",
      "4242",
      "--oom-score-adj",
      "77",
      "--pid",
      "host",
      "--shm-size",
      "16m",
      "busybox",
      "sh",
      "-c",
      `grep ^NoNewPrivs: /proc/self/status; cat /proc/sys/kernel/shmmax; test -c /dev/myzero && echo dev; id -G; cat /proc/self/oom_score_adj; test -d /proc/${process.pid} && echo host-pids; df -k /dev/shm | tail -1 | awk '{print $2}'; mkdir /tmp/x || echo no-mkdir`,
    ]);
    expect(r.stderr).toMatch(/mkdir/);
    expect(r.stdout).toBe(`NoNewPrivs:\t1\n1000000\ndev\n0 4242\n77\nhost-pids\n16384\nno-mkdir\n`);
  });
});
