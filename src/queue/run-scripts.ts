// Lua scripts that RunStore runs to read and change a run's Redis records
// atomically. Each script's comment names its keys and arguments.

/**
 * KEYS[1] is the run's counters, KEYS[2] the ids of its jobs counted done.
 * Adds ARGV[1] to the run's done chunks at time ARGV[2], of a job that
 * started at ARGV[5] (ARGV[2] when absent), and keeps the earliest start
 * as the run's startedAt. It counts only
 * while the counters exist and belong to generation ARGV[3] ('' for a run
 * recorded before runs had generations). It counts once per job id ARGV[4],
 * or every time when ARGV[4] is ''. A job that was active when its run was forgotten
 * would otherwise create a counters hash that nothing lists or expires, or
 * count toward a new run of the same name. A job run again by a second
 * worker, after the first lost its lock, would count twice. The ids take
 * the counters' expiry.
 */
export const COUNT_DONE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'generation') or '') ~= ARGV[3] then
  return 0
end
if ARGV[4] ~= '' then
  if redis.call('SADD', KEYS[2], ARGV[4]) == 0 then return 0 end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
local started = tonumber(ARGV[5] or ARGV[2])
local first = tonumber(redis.call('HGET', KEYS[1], 'startedAt'))
if first == nil or started < first then
  redis.call('HSET', KEYS[1], 'startedAt', started)
end
redis.call('HINCRBY', KEYS[1], 'done', ARGV[1])
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
return 1
`;

/**
 * KEYS[1] is the run's counters, KEYS[2] its failed chunks. Stores the
 * failures ARGV[3], ARGV[4], ... as field and value pairs, under the same
 * generation check as COUNT_DONE_SCRIPT (time ARGV[1], generation ARGV[2]).
 * failedChunks counts the fields added, so a chunk recorded twice counts
 * once. The failures take the counters' expiry, like rejected rows.
 */
export const RECORD_FAILURES_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'generation') or '') ~= ARGV[2] then
  return 0
end
local added = 0
for i = 3, #ARGV, 2 do
  added = added + redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'failedChunks', added)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return added
`;

/**
 * KEYS[1] is the run's counters, KEYS[2] its failed chunks and the other
 * keys its remaining records. Deletes each failure ARGV[i] whose value is
 * still ARGV[i + 1] and uncounts it. A failure stored again meanwhile, by a
 * worker that ran the chunk's new job, stays. The run has work again, so
 * its records stop expiring, as when documents are added.
 */
export const CLEAR_FAILURES_SCRIPT = `
local cleared = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], ARGV[i])
    cleared = cleared + 1
  end
end
if cleared > 0 then
  redis.call('HINCRBY', KEYS[1], 'failedChunks', -cleared)
end
for _, key in ipairs(KEYS) do redis.call('PERSIST', key) end
return cleared
`;

/**
 * KEYS[1] is the run's counters, KEYS[2] its documents. Returns the run's
 * generation, first setting it to ARGV[1] when the run has no records yet.
 * A run with documents but no generation was recorded before runs had
 * generations. It keeps none, so its queued jobs and part files still match.
 */
export const OPEN_GENERATION_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'generation')
if current then return current end
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
redis.call('HSET', KEYS[1], 'generation', ARGV[1])
return ARGV[1]
`;

/**
 * KEYS[1] is the run's rejected rows, KEYS[2] its counters. Records the
 * rejected row ARGV[1] and counts it. The row takes the counters' expiry,
 * so a reject added to an exported run expires with the other records.
 */
export const ADD_REJECT_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], 'rejected', 1)
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
`;

/**
 * KEYS[1] is the set of runs, KEYS[1 + i] the counters of run ARGV[i].
 * Removes the runs whose counters are gone and returns the others. Runs
 * atomically, so a run recorded meanwhile is never removed.
 */
export const PRUNE_RUNS_SCRIPT = `
local live = {}
for i, run in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    live[#live + 1] = run
  else
    redis.call('SREM', KEYS[1], run)
  end
end
return live
`;
