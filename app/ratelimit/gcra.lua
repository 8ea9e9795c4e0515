-- The API request gate, in one round trip: an active block, the month's hard quota, every rate-limit
-- bucket at once (all-or-nothing, Redis TIME as the clock), violation counting with escalating
-- blocks, and the tenant's cache epoch. Every key carries the tenant's {hash tag}: one slot.
-- (The key's last use is written by the usage meter's batched flush, off the request path.)
--
-- KEYS[1..n]  bucket keys
-- KEYS[n+1]   the tenant's cache epoch            (read)          -- KEYS[n+1..n+5] are optional
-- KEYS[n+2]   the API key's block                 (exists while blocked; value = level)
-- KEYS[n+3]   the API key's block level           (INCR on each block; kept 24 h)
-- KEYS[n+4]   the tenant's violations hash        (HINCRBY "<minute>|key|<key id>")
-- KEYS[n+5]   the tenant's billed calls this month (read; the usage meter counts them)
-- KEYS[n+6]   the tenant's requests in flight     (sorted set: request id -> start, µs)
-- KEYS[n+7]   the service's requests in flight    (idem; the one key outside the tenant's slot, touched
--             only when load shedding is on: a single Redis, not a cluster)
-- ARGV[1] cost   ARGV[2] n   ARGV[3] API key id ('' for none)
-- ARGV[4] refusals per minute that block the key (0: never)   ARGV[5] block durations in ms, "60000,600000"
-- ARGV[6] the month's hard quota of calls (0: none)   ARGV[7] the tenant's concurrency limit (0: none)
-- ARGV[8+3(i-1)..10+3(i-1)]: bucket i's strategy, a number, and its period P in microseconds;
-- then, per request: ARGV[8+3n] the client IP (refusals are counted per key and per IP), ARGV[9+3n]
-- the request id, ARGV[10+3n] the service's in-flight count at which this request is shed (0: never),
-- ARGV[11+3n] how long an in-flight entry may live (µs) before it counts as a crashed request's,
-- ARGV[12+3n] m, then m ids of this tenant's finished requests that leave the in-flight sets now (the
-- process's releases ride on its next call instead of costing a round trip of their own).
-- An admitted request with a concurrency limit or a shedding level is added to the in-flight sets; the
-- caller removes it when the response is done.
--   1 GCRA: the number is the emission interval T = P / limit (a burst of the whole limit, then one
--     request every T); the key holds the theoretical arrival time (TAT).
--   2 fixed window: the number is the limit; windows are aligned to the clock (a day starts 00:00 UTC);
--     the key is a hash {w = window index, c = count}.
--   3 sliding window (the counter approximation of the `limits` library): the number is the limit; the
--     previous window's count is weighted by how much of it still overlaps the sliding window;
--     the key is a hash {w, c, p = previous window's count}.
--
-- Returns {denied, retry_after_us, epoch, new_block_level, remaining_1, reset_us_1, ...}
-- denied: 0 admitted; i the first bucket that refused (none is charged then); -1 the key is blocked;
-- -2 the month's hard quota is used up; -3 the tenant has too many requests in flight; -4 the service
-- is shedding load at this request's priority.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local key_id, threshold, levels, quota = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local extra = #KEYS > n
-- Every plain value the gate reads comes in one MGET (each redis.call costs ~2 µs of Redis' time): the
-- GCRA buckets' arrival times, then the epoch, the key's block and the month's billed calls.
local reads = {}
for i = 1, n do
  if ARGV[5 + 3 * i] == '1' then reads[#reads + 1] = KEYS[i] end
end
local gcra_reads = #reads
if extra then
  reads[#reads + 1] = KEYS[n + 1]
  reads[#reads + 1] = KEYS[n + 2]
  reads[#reads + 1] = KEYS[n + 5]
end
local values = {}
if #reads > 0 then values = redis.call('MGET', unpack(reads)) end
local epoch = 0
if extra then epoch = tonumber(values[gcra_reads + 1] or 0) end
if extra and key_id ~= '' and values[gcra_reads + 2] then
  local blocked_ms = redis.call('PTTL', KEYS[n + 2])
  if blocked_ms > 0 then return {-1, blocked_ms * 1000, epoch, 0} end
end
if extra and quota > 0 and tonumber(values[gcra_reads + 3] or 0) >= quota then
  return {-2, 0, epoch, 0}
end
local concurrency, ip, request_id = tonumber(ARGV[7]), ARGV[8 + 3 * n], ARGV[9 + 3 * n]
local shed_at, stale = tonumber(ARGV[10 + 3 * n] or 0), tonumber(ARGV[11 + 3 * n] or 30000000)
local released = tonumber(ARGV[12 + 3 * n] or 0)
if extra and released > 0 then
  local ids = {}
  for j = 1, released do ids[j] = ARGV[12 + 3 * n + j] end
  redis.call('ZREM', KEYS[n + 6], unpack(ids))
  -- the service's set only while the service sheds load (a request admitted before shedding was turned
  -- off is pruned as stale once the set matters again)
  if string.sub(KEYS[n + 7], -12) ~= ':no-shedding' then redis.call('ZREM', KEYS[n + 7], unpack(ids)) end
end
local function busy(key, limit)
  -- entries older than `stale` belong to requests whose process died: pruned only when they matter
  if redis.call('ZCARD', key) < limit then return false end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - stale)
  return redis.call('ZCARD', key) >= limit
end
if extra and shed_at > 0 and busy(KEYS[n + 7], shed_at) then return {-4, 1000000, epoch, 0} end
if extra and concurrency > 0 and busy(KEYS[n + 6], concurrency) then return {-3, 1000000, epoch, 0} end

local denied, retry = 0, 0
local writes = {}
local out = {0, 0, epoch, 0}
local read = 0
for i = 1, n do
  local base = 5 + 3 * i
  local strategy, number, period = tonumber(ARGV[base]), tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local remaining, reset, wait = 0, 0, 0
  if strategy == 1 then
    read = read + 1
    local tat = tonumber(values[read] or now)
    if tat < now then tat = now end
    local new_tat = tat + number * cost
    local allow_at = new_tat - period
    if allow_at > now then
      wait, reset = allow_at - now, tat - now
    else
      remaining, reset = math.floor((now - allow_at) / number), new_tat - now
      writes[i] = new_tat
    end
  else
    local window = math.floor(now / period)
    local state = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    local w, c, p = tonumber(state[1] or -1), tonumber(state[2] or 0), tonumber(state[3] or 0)
    local current, previous = 0, 0
    if w == window then current, previous = c, p elseif w == window - 1 then previous = c end
    local window_end = (window + 1) * period
    local used = current
    if strategy == 3 then used = math.floor(previous * (window_end - now) / period) + current end
    if used + cost > number then
      wait = window_end - now
      if strategy == 3 and current + cost <= number and previous > 0 then
        -- the previous window's weight must fall to (limit - current - cost) / previous
        wait = math.max(1, window_end - period * (number - current - cost) / previous - now)
      end
      reset = wait
    else
      remaining, reset = number - used - cost, window_end - now
      writes[i] = {window, current + cost, previous}
    end
  end
  if wait > 0 then
    if denied == 0 then denied = i end
    if wait > retry then retry = wait end
  end
  out[3 + 2 * i] = remaining
  out[4 + 2 * i] = math.ceil(reset)
end

if denied == 0 then
  for i = 1, n do
    local base = 5 + 3 * i
    local strategy, period = tonumber(ARGV[base]), tonumber(ARGV[base + 2])
    if strategy == 1 then
      redis.call('SET', KEYS[i], string.format('%.0f', writes[i]), 'PX', math.ceil(period / 1000) + 1000)
    else
      local w = writes[i]
      redis.call('HSET', KEYS[i], 'w', w[1], 'c', w[2], 'p', w[3])
      redis.call('PEXPIREAT', KEYS[i], math.ceil((w[1] + 2) * period / 1000))
    end
  end
  if extra and concurrency > 0 then
    redis.call('ZADD', KEYS[n + 6], now, request_id)
    redis.call('PEXPIRE', KEYS[n + 6], math.ceil(stale / 1000) * 2)
  end
  if extra and shed_at > 0 then
    redis.call('ZADD', KEYS[n + 7], now, request_id)
    redis.call('PEXPIRE', KEYS[n + 7], math.ceil(stale / 1000) * 2)
  end
elseif extra and key_id ~= '' then
  local minute = math.floor(tonumber(t[1]) / 60)
  if ip and ip ~= '' then redis.call('HINCRBY', KEYS[n + 4], minute .. '|ip|' .. ip, 1) end
  local count = redis.call('HINCRBY', KEYS[n + 4], minute .. '|key|' .. key_id, 1)
  if threshold > 0 and count == threshold then
    local level = redis.call('INCR', KEYS[n + 3])
    redis.call('EXPIRE', KEYS[n + 3], 86400)
    local durations = {}
    for ms in string.gmatch(levels, '%d+') do durations[#durations + 1] = tonumber(ms) end
    redis.call('SET', KEYS[n + 2], level, 'PX', durations[math.min(level, #durations)])
    out[4] = level
  end
end
out[1] = denied
out[2] = math.ceil(retry)
return out
