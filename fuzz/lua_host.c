/*
 * A minimal LuaJIT interpreter on the LuaJIT that nginx's Lua module uses
 * (Debian's libluajit2-5.1, which conflicts with the luajit package): runs
 * a script with its arguments in `arg`, as `luajit script.lua args...`
 * would.  For fuzz/fuzz_xml.lua.
 */

#include <stdio.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>


int
main(int argc, char **argv)
{
    int         i;
    lua_State  *L;

    if (argc < 2) {
        fprintf(stderr, "usage: %s script.lua [args...]\n", argv[0]);
        return 2;
    }

    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
        return 1;
    }

    luaL_openlibs(L);

    lua_newtable(L);
    for (i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    if (luaL_loadfile(L, argv[1]) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }

    for (i = 2; i < argc; i++) {
        lua_pushstring(L, argv[i]);
    }

    if (lua_pcall(L, argc - 2, 0, 0) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }

    lua_close(L);
    return 0;
}
