-- The API request gate, in one round trip: GCRA for several buckets at once (all-or-nothing, Redis
-- TIME as the clock), plus the tenant's cache epoch and the key's last-use time.
--
-- KEYS[1..n]     : bucket keys (each holds its theoretical arrival time, TAT, in microseconds)
-- KEYS[n+1]      : optional: the tenant's cache epoch (read)
-- KEYS[n+2]      : optional: the tenant's last-used hash (HSET ARGV[last] = now in seconds)
-- ARGV[1]        : cost of this request (usually 1)
-- ARGV[2]        : n, the number of buckets
-- ARGV[2i+1], ARGV[2i+2] : bucket i's emission interval T and period P, in microseconds
--                  (a limit of L per P gives T = P / L and admits a burst of the whole quota)
-- ARGV[2n+3]     : optional: the API key id for the last-used hash
--
-- Returns {denied, retry_after_us, remaining_1, reset_us_1, ..., remaining_n, reset_us_n, epoch}
-- denied is 0, or the index of the first bucket that refused. When one bucket refuses, none is
-- charged, so a refused request costs nothing against any scope.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local denied, retry = 0, 0
local new_tats = {}
local out = {0, 0}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i + 1])
  local period = tonumber(ARGV[2 * i + 2])
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
  out[2 * i + 1] = remaining
  out[2 * i + 2] = math.ceil(reset)
end
if denied == 0 then
  for i = 1, n do
    local period = tonumber(ARGV[2 * i + 2])
    redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX', math.ceil(period / 1000) + 1000)
  end
end
out[1] = denied
out[2] = math.ceil(retry)
local epoch = 0
if #KEYS > n then
  epoch = tonumber(redis.call('GET', KEYS[n + 1]) or 0)
end
if #KEYS > n + 1 and denied == 0 then
  redis.call('HSET', KEYS[n + 2], ARGV[2 * n + 3], t[1])
end
out[2 * n + 3] = epoch
return out
