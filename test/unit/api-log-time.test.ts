import { describe, expect, it } from "vitest";
import { toDockerLogTime } from "../../api/logs/time.js";

describe("toDockerLogTime", () => {
  it("turns conmon's offset times into Docker's UTC form, keeping nanoseconds", () => {
    expect(toDockerLogTime("2026-11-28T10:31:05.580792201+00:00")).toBe("2026-11-28T10:31:05.580792201Z");
    expect(toDockerLogTime("2026-11-28T11:31:05.000000001+01:00")).toBe("2026-11-28T10:31:05.000000001Z");
    expect(toDockerLogTime("2026-11-28T10:31:05.5Z")).toBe("2026-11-28T10:31:05.5Z");
  });
});
