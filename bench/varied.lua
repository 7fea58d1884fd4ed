-- wrk: a distinct request target per request (`?n=1`, `?n=2`, ...), so no two request heads
-- are the same bytes and buddylb's remembered-head shortcut (http/request.py, `whole`) never
-- applies: the L7 keep-alive figure for traffic whose heads vary, as real traffic's do.
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "?n=" .. n)
end
