// `docker pull -a NAME`: every tag the registry lists for the repository, one pull after the
// other, as dockerd does (distribution pullRepository). The tag list and each tag's manifest are
// fetched before the 200 goes out, so an unknown repository is a 404, not a broken stream.
import { notFound } from "../../../shared/errors.js";
import { familiarName, familiarString, parseReference } from "../../../shared/reference.js";
import { RegistryClient } from "./client.js";
import { PullJob, type PullRequest, type RegistryContext } from "./pull.js";
import type { Emit } from "./progress.js";

export interface PullAllJob {
  tags: string[];
  run(emit: Emit, signal?: AbortSignal): Promise<void>;
}

export async function preparePullAll(
  ctx: RegistryContext,
  req: PullRequest,
  signal?: AbortSignal,
): Promise<PullAllJob> {
  const ref = parseReference(req.reference);
  const client = new RegistryClient(ctx.hosts, ref.domain, req.credentials, ctx.log, ctx.retry);
  const tags = (await client.listTags(ref.path, signal)).sort();
  const name = familiarName(ref);
  if (tags.length === 0)
    throw notFound(`repository ${name} has no tags to pull: push one first, or name a tag`);
  const jobs: PullJob[] = [];
  for (const tag of tags)
    jobs.push(await PullJob.prepare(ctx, { ...req, reference: `${name}:${tag}` }, signal));
  return {
    tags,
    async run(emit: Emit, runSignal?: AbortSignal): Promise<void> {
      for (const job of jobs) {
        // Each tag's own "Status:" line would claim the whole pull ended; dockerd prints one at the end.
        await job.run((m) => {
          if (typeof m.status === "string" && m.status.startsWith("Status: ")) return;
          emit(m);
        }, runSignal);
      }
      emit({ status: `Status: Downloaded newer images for ${familiarString(parseReference(name))}` });
    },
  };
}
