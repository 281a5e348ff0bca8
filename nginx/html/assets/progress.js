// The learner's progress (#/progress): the record `./lab check` keeps in the lab's home
// (labkit/progress.py writes it, `./lab progress` prints it), read through the gateway at
// /lab/progress.json. Each exercise: not started, in progress or passed, with when, and the
// hints and revealed answers it used. The same words as `./lab progress`.

export const NOT_STARTED = 'not started';
export const PASSED = 'passed';

function when(seconds) {
  const at = new Date(seconds * 1000);
  return `${at.toLocaleDateString()} ${at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
}

/** The rows of the page, in the exercises' order: the record's catalog lists every exercise
 *  (the ones not started too); an exercise recorded but not in the catalog is kept. */
export function progressRows(record) {
  const exercises = (record && typeof record.exercises === 'object' && record.exercises) || {};
  const catalog = Array.isArray(record && record.catalog) ? record.catalog : [];
  const titles = new Map(catalog.map((c) => [c.exercise, c.title || c.exercise]));
  for (const name of Object.keys(exercises)) if (!titles.has(name)) titles.set(name, name);
  const rows = [...titles.keys()].sort().map((name) => {
    const entry = exercises[name];
    if (!entry) return { exercise: name, title: titles.get(name), status: NOT_STARTED, detail: '' };
    const passed = entry.status === PASSED;
    const detail = [`${entry.runs} run(s)`, `${entry.hints} hint(s)`];
    if (entry.revealed && entry.revealed.length) detail.push(`answers revealed: ${entry.revealed.join(', ')}`);
    return {
      exercise: name,
      title: titles.get(name),
      status: entry.status,
      when: when(passed ? entry.passed_at : entry.last_run_at),
      detail: detail.join('; '),
    };
  });
  return { rows, passed: rows.filter((r) => r.status === PASSED).length, total: rows.length };
}

/** The game days' score (`./lab progress`'s "game day" line), or '' before the first game. */
export function gameDayLine(record) {
  const games = record && record.gameday;
  if (!games || !games.games) return '';
  let line = `Game days: ${games.games} game(s) answered, ${games.right} right, `
    + `${games.points} points in all (best game ${games.best})`;
  const series = Array.isArray(games.series) ? games.series : [];
  if (series.length) {
    const last = series[series.length - 1];
    line += `; last series of rounds: ${last.points} points in ${last.played} of ${last.rounds} round(s)`;
  }
  return `${line}.`;
}

/** What the page says when the gateway has no record: nothing checked yet on this machine, or
 *  (Kubernetes) the checks record it on the learner's machine, not in the cluster. */
export const NO_RECORD = 'No progress recorded here yet. Each `./lab check NN` records its run in '
  + 'the lab\'s home (.lab/progress.json) on the machine where it runs, and this page reads it '
  + 'through the gateway natively and in compose. On Kubernetes the checks run on your machine, '
  + 'not in the cluster: run ./lab progress there.';
