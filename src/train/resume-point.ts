// Which checkpoint of a run folder a restart continues from: the one `latest` names (not the
// highest-numbered folder), after checking that its name, manifest and train.json agree. One
// exception: a checkpoint of the same run newer than `latest` (the process died between finishing
// it and moving `latest`) is taken. Checkpoints that disagree with themselves are ignored, with a note.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, MANIFEST } from './checkpoint-files';
import { CheckpointIdentity, checkpointIdentity, stepOfName } from './checkpoint-meta';

/** Where a run folder resumes from, and what was noticed on the way. */
export interface ResumePoint {
  /** The checkpoint folder to load (null: nothing to resume). */
  dir: string | null;
  step: number;
  /** Sentences for the operator (ignored folders, a missing `latest`, ...). */
  notes: string[];
  /** Complete step{N} folders that were ignored as inconsistent, with the reason. */
  ignored: { dir: string; why: string }[];
}

/** Complete step{N} folders (with a manifest), by step, each with its identity or why it is unusable. */
function stepFolders(folder: string): { step: number; dir: string; id: CheckpointIdentity | null; why: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(folder);
  } catch {
    return [];
  }
  return names
    .map((n) => /^step(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(folder, m[0], MANIFEST)))
    .map((m) => {
      const dir = path.join(folder, m[0]);
      try {
        return { step: Number(m[1]), dir, id: checkpointIdentity(dir), why: '' };
      } catch (e) {
        return { step: Number(m[1]), dir, id: null, why: (e as Error).message };
      }
    })
    .sort((a, b) => a.step - b.step);
}

/**
 * Finds the checkpoint a run folder resumes from. Throws CheckpointError when `latest` is not a
 * link (e.g. copied as a folder) or names a checkpoint that disagrees with itself.
 */
export function findResumePoint(folder: string): ResumePoint {
  const link = path.join(folder, 'latest');
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(link);
  } catch {
    /* no latest */
  }
  if (st && !st.isSymbolicLink()) {
    throw new CheckpointError(
      `${link} is a ${st.isDirectory() ? 'folder' : 'file'}, not a link to a checkpoint (was the run folder copied with a tool that follows links, such as \`cp -r\` without -a?): delete it and olmo-ts recreates it; resume from a checkpoint with --load_path=${folder}/stepN`,
    );
  }
  const all = stepFolders(folder);
  const ignored = all.filter((c) => !c.id).map((c) => ({ dir: c.dir, why: c.why }));
  const good = all.filter((c) => c.id);
  const notes = ignored.map((c) => `ignoring ${c.dir}: ${c.why}`);
  const done = (dir: string | null, step: number): ResumePoint => ({ dir, step, notes, ignored });
  if (st) {
    const target = path.resolve(folder, fs.readlinkSync(link));
    if (fs.existsSync(path.join(target, MANIFEST))) {
      let id: CheckpointIdentity;
      try {
        id = checkpointIdentity(target);
      } catch {
        // Damaged: loading it verifies every checksum first and names exactly what is wrong
        // (and then its identity); never silently fall back to an older checkpoint.
        return done(target, stepOfName(target) ?? 0);
      }
      const newer = good.filter((c) => c.step > id.trainStep && id.runId !== null && c.id!.runId === id.runId);
      if (newer.length) {
        const n = newer[newer.length - 1]!;
        notes.push(`\`latest\` names ${path.basename(target)}, but ${path.basename(n.dir)} of the same run was completed after it (the process stopped before moving \`latest\`): resuming from ${path.basename(n.dir)}`);
        return done(n.dir, n.step);
      }
      return done(target, id.trainStep);
    }
    notes.push(`\`latest\` points at ${target}, which is ${fs.existsSync(target) ? 'not a complete checkpoint' : 'missing'}`);
  }
  if (!good.length) return done(null, 0);
  const last = good[good.length - 1]!;
  notes.push(`${st ? 'falling back to' : 'no `latest` link: resuming from'} the newest complete checkpoint, ${last.dir}`);
  return done(last.dir, last.step);
}

/** The folder a run folder resumes from, or null (see findResumePoint). */
export function latestCheckpoint(folder: string): string | null {
  return findResumePoint(folder).dir;
}
