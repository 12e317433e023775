// Docker's attributes on a container event: the container's labels, then image and name.
import type { ContainerRecord } from "./types.js";

export function containerEventAttributes(rec: ContainerRecord): Record<string, string> {
  return { ...(rec.Config.Labels ?? {}), image: rec.Config.Image, name: rec.Name };
}
