-- The API request gate, in one round trip: an active block, GCRA for several buckets at once
-- (all-or-nothing, Redis TIME as the clock), violation counting with escalating blocks, the tenant's
-- cache epoch and the API key's last use. Every key carries the tenant's {hash tag}: one slot.
--
-- KEYS[1..n]  bucket keys (each holds its theoretical arrival time, TAT, in microseconds)
-- KEYS[n+1]   the tenant's cache epoch            (read)          -- KEYS[n+1..n+5] are optional
-- KEYS[n+2]   the tenant's last-used hash         (HSET key id = now, seconds)
-- KEYS[n+3]   the API key's block                 (exists while blocked; value = level)
-- KEYS[n+4]   the API key's block level           (INCR on each block; kept 24 h)
-- KEYS[n+5]   the tenant's violations hash        (HINCRBY "<minute>|key|<key id>")
-- KEYS[n+6]   the tenant's billed calls this month (read; the usage meter counts them)
-- ARGV[1] cost   ARGV[2] n   ARGV[3] API key id ('' for none)
-- ARGV[4] refusals per minute that block the key (0: never)   ARGV[5] block durations in ms, "60000,600000"
-- ARGV[6] the month's hard quota of calls (0: none)
-- ARGV[7+2(i-1)], ARGV[8+2(i-1)]: bucket i's emission interval T and period P, in microseconds
--   (a limit of L per P gives T = P / L and admits a burst of the whole quota)
--
-- Returns {denied, retry_after_us, epoch, new_block_level, remaining_1, reset_us_1, ...}
-- denied: 0 admitted; i the first bucket that refused (none is charged then); -1 the key is blocked;
-- -2 the month's hard quota is used up.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local key_id, threshold, levels, quota = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local extra = #KEYS > n
local epoch = 0
if extra then epoch = tonumber(redis.call('GET', KEYS[n + 1]) or 0) end
if extra and key_id ~= '' then
  local blocked_ms = redis.call('PTTL', KEYS[n + 3])
  if blocked_ms > 0 then return {-1, blocked_ms * 1000, epoch, 0} end
end
if extra and quota > 0 and tonumber(redis.call('GET', KEYS[n + 6]) or 0) >= quota then
  return {-2, 0, epoch, 0}
end

local denied, retry = 0, 0
local new_tats = {}
local out = {0, 0, epoch, 0}
for i = 1, n do
  local interval = tonumber(ARGV[5 + 2 * i])
  local period = tonumber(ARGV[6 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - period
  local remaining, reset
  if allow_at > now then
    if denied == 0 then denied = i end
    if allow_at - now > retry then retry = allow_at - now end
    remaining = 0
    reset = tat - now
  else
    remaining = math.floor((now - allow_at) / interval)
    reset = new_tat - now
  end
  new_tats[i] = new_tat
  out[3 + 2 * i] = remaining
  out[4 + 2 * i] = math.ceil(reset)
end

if denied == 0 then
  for i = 1, n do
    local period = tonumber(ARGV[6 + 2 * i])
    redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX', math.ceil(period / 1000) + 1000)
  end
  if extra and key_id ~= '' then redis.call('HSET', KEYS[n + 2], key_id, t[1]) end
elseif extra and key_id ~= '' then
  local minute = math.floor(tonumber(t[1]) / 60)
  local count = redis.call('HINCRBY', KEYS[n + 5], minute .. '|key|' .. key_id, 1)
  if threshold > 0 and count == threshold then
    local level = redis.call('INCR', KEYS[n + 4])
    redis.call('EXPIRE', KEYS[n + 4], 86400)
    local durations = {}
    for ms in string.gmatch(levels, '%d+') do durations[#durations + 1] = tonumber(ms) end
    redis.call('SET', KEYS[n + 3], level, 'PX', durations[math.min(level, #durations)])
    out[4] = level
  end
end
out[1] = denied
out[2] = math.ceil(retry)
return out
