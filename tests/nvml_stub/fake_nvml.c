/*
 * A stand-in libnvidia-ml.so.1 for machines without an NVIDIA GPU.
 *
 * The real nvidia-ml-py loads it (dlopen "libnvidia-ml.so.1") and calls it through ctypes, so
 * tests exercise the real bindings, struct layouts and the two-call size protocol, not a mock.
 * What the node looks like comes from a text file named by VRAMTOP_FAKE_NVML_SCENARIO (format in
 * README.md). The file is stat()ed on every call and re-read when it changes, so a test can
 * rewrite it (atomically) while the program under test keeps reading.
 *
 * Build variants drop symbols the way older drivers lack them:
 *   -DNO_MEMORY_INFO_V2   no nvmlDeviceGetMemoryInfo_v2 (drivers before R510)
 *   -DNO_PROCESSES_V3     no nvmlDeviceGet{Compute,Graphics}RunningProcesses_v3 (before R510)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef int nvmlReturn_t;
typedef unsigned long long ull;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

static const struct { const char *name; int code; const char *text; } ERRORS[] = {
    {"SUCCESS", NVML_SUCCESS, "Success"},
    {"UNINITIALIZED", NVML_ERROR_UNINITIALIZED, "Uninitialized"},
    {"INVALID_ARGUMENT", NVML_ERROR_INVALID_ARGUMENT, "Invalid Argument"},
    {"NOT_SUPPORTED", NVML_ERROR_NOT_SUPPORTED, "Not Supported"},
    {"NO_PERMISSION", NVML_ERROR_NO_PERMISSION, "Insufficient Permissions"},
    {"NOT_FOUND", NVML_ERROR_NOT_FOUND, "Not Found"},
    {"INSUFFICIENT_SIZE", NVML_ERROR_INSUFFICIENT_SIZE, "Insufficient Size"},
    {"DRIVER_NOT_LOADED", NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"},
    {"TIMEOUT", NVML_ERROR_TIMEOUT, "Timeout"},
    {"LIBRARY_NOT_FOUND", NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"},
    {"FUNCTION_NOT_FOUND", NVML_ERROR_FUNCTION_NOT_FOUND, "Function Not Found"},
    {"GPU_IS_LOST", NVML_ERROR_GPU_IS_LOST, "GPU is lost"},
    {"RESET_REQUIRED", NVML_ERROR_RESET_REQUIRED, "GPU requires restart"},
    {"ARGUMENT_VERSION_MISMATCH", NVML_ERROR_ARGUMENT_VERSION_MISMATCH, "Argument version mismatch"},
    {"UNKNOWN", NVML_ERROR_UNKNOWN, "Unknown Error"},
};
#define N_ERRORS (sizeof ERRORS / sizeof ERRORS[0])

/* The structs exactly as nvml.h (and pynvml's ctypes mirrors) lay them out. */
typedef struct { ull total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; ull total, reserved, free, used; } nvmlMemory_v2_t;
#define NVML_MEMORY_V2_VERSION ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2 << 24)))
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
    unsigned int pid;
    ull usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
#define NVML_VALUE_NOT_AVAILABLE_ULL (~0ULL)

#define MAX_GPUS 64
#define MAX_PROCS 4096
#define MAX_FAULTS 512
#define TEXT 96

struct gpu {
    char name[TEXT], uuid[TEXT];
    ull total, reserved, used, free;
    unsigned int util_gpu, util_mem, temperature, power_mw, power_limit_mw;
};
struct proc { int gpu; unsigned int pid; ull used; int graphics; };
struct fault { char function[TEXT]; int gpu; /* -1: any */ int code; };

struct scenario {
    char driver[TEXT], nvml[TEXT];
    int cuda;
    int gpu_count;
    struct gpu gpus[MAX_GPUS];
    int proc_count;
    struct proc procs[MAX_PROCS];
    int fault_count;
    struct fault faults[MAX_FAULTS];
};

/* A device handle points into this array, so it stays valid across scenario reloads. */
typedef struct { int index; } device_t;
typedef device_t *nvmlDevice_t;
static device_t DEVICES[MAX_GPUS];

static pthread_mutex_t LOCK = PTHREAD_MUTEX_INITIALIZER;
static struct scenario S, NEXT;
static int LOADED;      /* S holds a well-formed scenario */
static int BROKEN;      /* the file exists but does not parse: every call fails, loudly */
static char LOADED_PATH[4096];
static struct stat LOADED_STAT;
static int INIT_COUNT;

static int error_code(const char *name) {
    if (strncmp(name, "NVML_ERROR_", 11) == 0) name += 11;
    for (size_t i = 0; i < N_ERRORS; i++)
        if (strcmp(ERRORS[i].name, name) == 0) return ERRORS[i].code;
    char *end;
    long v = strtol(name, &end, 10);
    return (*name && !*end) ? (int)v : -1;
}

static void copy_text(char *dst, const char *src) {
    snprintf(dst, TEXT, "%s", src);
    dst[strcspn(dst, "\r\n")] = 0;
}

static int parse_gpu_ref(const char *s) { return strcmp(s, "*") == 0 ? -1 : atoi(s); }

/* Parses the file into NEXT; returns 0, or the line number of the first bad line. */
static int parse(FILE *f) {
    char line[1024], key[64], a[TEXT], b[TEXT], c[TEXT], d[TEXT];
    int lineno = 0, current = -1;
    memset(&NEXT, 0, sizeof NEXT);
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == 0) continue;
        if (sscanf(p, "%63s", key) != 1) continue;
        char *rest = p + strlen(key);
        rest += strspn(rest, " \t");
        int n = sscanf(rest, "%95s %95s %95s %95s", a, b, c, d);
        if (strcmp(key, "driver") == 0 && n >= 1) copy_text(NEXT.driver, rest);
        else if (strcmp(key, "nvml") == 0 && n >= 1) copy_text(NEXT.nvml, rest);
        else if (strcmp(key, "cuda") == 0 && n == 1) NEXT.cuda = atoi(a);
        else if (strcmp(key, "gpu") == 0 && n == 1) {
            current = atoi(a);
            if (current != NEXT.gpu_count || current >= MAX_GPUS) return lineno; /* 0, 1, 2... in order */
            NEXT.gpu_count++;
        } else if (current < 0 && (strcmp(key, "name") == 0 || strcmp(key, "uuid") == 0 ||
                                   strcmp(key, "memory") == 0 || strcmp(key, "utilization") == 0 ||
                                   strcmp(key, "temperature") == 0 || strcmp(key, "power") == 0 ||
                                   strcmp(key, "power_limit") == 0)) {
            return lineno; /* a GPU field before any "gpu N" line */
        } else if (strcmp(key, "name") == 0 && n >= 1) copy_text(NEXT.gpus[current].name, rest);
        else if (strcmp(key, "uuid") == 0 && n == 1) copy_text(NEXT.gpus[current].uuid, a);
        else if (strcmp(key, "memory") == 0 && n == 4) {
            struct gpu *g = &NEXT.gpus[current];
            g->total = strtoull(a, 0, 10);
            g->reserved = strtoull(b, 0, 10);
            g->used = strtoull(c, 0, 10);
            g->free = strtoull(d, 0, 10);
        } else if (strcmp(key, "utilization") == 0 && n == 2) {
            NEXT.gpus[current].util_gpu = (unsigned)atoi(a);
            NEXT.gpus[current].util_mem = (unsigned)atoi(b);
        } else if (strcmp(key, "temperature") == 0 && n == 1) NEXT.gpus[current].temperature = (unsigned)atoi(a);
        else if (strcmp(key, "power") == 0 && n == 1) NEXT.gpus[current].power_mw = (unsigned)atoi(a);
        else if (strcmp(key, "power_limit") == 0 && n == 1) NEXT.gpus[current].power_limit_mw = (unsigned)atoi(a);
        else if (strcmp(key, "process") == 0 && (n == 3 || n == 4)) {
            if (NEXT.proc_count >= MAX_PROCS) return lineno;
            struct proc *pr = &NEXT.procs[NEXT.proc_count++];
            pr->gpu = atoi(a);
            pr->pid = (unsigned)strtoul(b, 0, 10);
            pr->used = strcmp(c, "na") == 0 ? NVML_VALUE_NOT_AVAILABLE_ULL : strtoull(c, 0, 10);
            if (n == 4 && strcmp(d, "graphics") != 0 && strcmp(d, "compute") != 0) return lineno;
            pr->graphics = n == 4 && strcmp(d, "graphics") == 0;
        } else if (strcmp(key, "fault") == 0 && n == 3) {
            if (NEXT.fault_count >= MAX_FAULTS) return lineno;
            struct fault *ft = &NEXT.faults[NEXT.fault_count++];
            copy_text(ft->function, a);
            ft->gpu = parse_gpu_ref(b);
            ft->code = error_code(c);
            if (ft->code < 0) return lineno;
        } else {
            return lineno;
        }
    }
    for (int i = 0; i < NEXT.proc_count; i++)
        if (NEXT.procs[i].gpu < 0 || NEXT.procs[i].gpu >= NEXT.gpu_count) return lineno;
    return 0;
}

/* Brings S up to date with the file; returns NVML_SUCCESS, or the code every call gets. */
static nvmlReturn_t sync_scenario(void) {
    const char *path = getenv("VRAMTOP_FAKE_NVML_SCENARIO");
    struct stat st;
    if (!path || !*path || stat(path, &st) != 0) {
        /* No scenario: a machine whose driver is absent. A scenario already read stays. */
        return LOADED && !BROKEN ? NVML_SUCCESS : NVML_ERROR_DRIVER_NOT_LOADED;
    }
    if (LOADED && strcmp(path, LOADED_PATH) == 0 && st.st_ino == LOADED_STAT.st_ino &&
        st.st_dev == LOADED_STAT.st_dev && st.st_size == LOADED_STAT.st_size &&
        st.st_mtim.tv_sec == LOADED_STAT.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == LOADED_STAT.st_mtim.tv_nsec)
        return BROKEN ? NVML_ERROR_UNKNOWN : NVML_SUCCESS;
    FILE *f = fopen(path, "r");
    if (!f) return LOADED && !BROKEN ? NVML_SUCCESS : NVML_ERROR_DRIVER_NOT_LOADED;
    int bad = parse(f);
    fclose(f);
    snprintf(LOADED_PATH, sizeof LOADED_PATH, "%s", path);
    LOADED_STAT = st;
    LOADED = 1;
    BROKEN = bad != 0;
    if (BROKEN) {
        fprintf(stderr, "fake NVML: %s line %d is not understood; every call fails\n", path, bad);
        return NVML_ERROR_UNKNOWN;
    }
    memcpy(&S, &NEXT, sizeof S);
    for (int i = 0; i < MAX_GPUS; i++) DEVICES[i].index = i;
    return NVML_SUCCESS;
}

/* "nvmlDeviceGetMemoryInfo" names both the v1 and the _v2 symbol; "..._v2" only the latter. */
static int fault_matches(const struct fault *ft, const char *symbol, const char *base, int gpu) {
    if (ft->gpu != -1 && ft->gpu != gpu) return 0;
    return strcmp(ft->function, "*") == 0 || strcmp(ft->function, symbol) == 0 ||
           strcmp(ft->function, base) == 0;
}

/* Every entry point starts here (and holds LOCK until end()). */
static nvmlReturn_t begin(const char *symbol, const char *base, int needs_init, nvmlDevice_t device,
                          int *index) {
    pthread_mutex_lock(&LOCK);
    nvmlReturn_t rc = sync_scenario();
    if (rc != NVML_SUCCESS) return rc;
    if (needs_init && INIT_COUNT == 0) return NVML_ERROR_UNINITIALIZED;
    int gpu = -1;
    if (index) {
        if (device < DEVICES || device >= DEVICES + MAX_GPUS) return NVML_ERROR_INVALID_ARGUMENT;
        gpu = device->index;
        if (gpu >= S.gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
        *index = gpu;
    }
    for (int i = 0; i < S.fault_count; i++)
        if (fault_matches(&S.faults[i], symbol, base, gpu)) return S.faults[i].code;
    return NVML_SUCCESS;
}

static nvmlReturn_t end(nvmlReturn_t rc) {
    pthread_mutex_unlock(&LOCK);
    return rc;
}

static nvmlReturn_t copy_string(char *dst, unsigned int length, const char *src) {
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

/* ---- Initialisation ---- */

static nvmlReturn_t init(const char *symbol) {
    nvmlReturn_t rc = begin(symbol, "nvmlInit", 0, NULL, NULL);
    if (rc == NVML_SUCCESS) INIT_COUNT++;
    return end(rc);
}
nvmlReturn_t nvmlInit(void) { return init("nvmlInit"); }
nvmlReturn_t nvmlInit_v2(void) { return init("nvmlInit_v2"); }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return init("nvmlInitWithFlags"); }

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&LOCK);
    if (INIT_COUNT == 0) return end(NVML_ERROR_UNINITIALIZED);
    INIT_COUNT--;
    return end(NVML_SUCCESS);
}

const char *nvmlErrorString(nvmlReturn_t result) {
    for (size_t i = 0; i < N_ERRORS; i++)
        if (ERRORS[i].code == result) return ERRORS[i].text;
    return "Unknown Error";
}

/* Lets a test check that it talks to this stand-in, never to a real driver. */
int vramtopFakeNvml(void) { return 1; }

/* How many nvmlInit calls are not yet matched by nvmlShutdown (tests clean up leftovers). */
int vramtopFakeNvmlInitCount(void) {
    pthread_mutex_lock(&LOCK);
    int n = INIT_COUNT;
    pthread_mutex_unlock(&LOCK);
    return n;
}

/* ---- System ---- */

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    nvmlReturn_t rc = begin("nvmlSystemGetDriverVersion", "nvmlSystemGetDriverVersion", 1, NULL, NULL);
    return end(rc ? rc : copy_string(version, length, S.driver));
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    nvmlReturn_t rc = begin("nvmlSystemGetNVMLVersion", "nvmlSystemGetNVMLVersion", 1, NULL, NULL);
    return end(rc ? rc : copy_string(version, length, S.nvml));
}

static nvmlReturn_t cuda_version(const char *symbol, int *version) {
    nvmlReturn_t rc = begin(symbol, "nvmlSystemGetCudaDriverVersion", 0, NULL, NULL);
    if (rc == NVML_SUCCESS) {
        if (!version) rc = NVML_ERROR_INVALID_ARGUMENT;
        else *version = S.cuda;
    }
    return end(rc);
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion", v); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion_v2", v); }

/* ---- Devices ---- */

static nvmlReturn_t device_count(const char *symbol, unsigned int *count) {
    nvmlReturn_t rc = begin(symbol, "nvmlDeviceGetCount", 1, NULL, NULL);
    if (rc == NVML_SUCCESS) {
        if (!count) rc = NVML_ERROR_INVALID_ARGUMENT;
        else *count = (unsigned int)S.gpu_count;
    }
    return end(rc);
}
nvmlReturn_t nvmlDeviceGetCount(unsigned int *c) { return device_count("nvmlDeviceGetCount", c); }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *c) { return device_count("nvmlDeviceGetCount_v2", c); }

static nvmlReturn_t handle_by_index(const char *symbol, unsigned int index, nvmlDevice_t *device) {
    pthread_mutex_lock(&LOCK);
    nvmlReturn_t rc = sync_scenario();
    if (rc == NVML_SUCCESS && INIT_COUNT == 0) rc = NVML_ERROR_UNINITIALIZED;
    if (rc == NVML_SUCCESS && (!device || index >= (unsigned int)S.gpu_count)) rc = NVML_ERROR_INVALID_ARGUMENT;
    if (rc == NVML_SUCCESS) {
        for (int i = 0; i < S.fault_count; i++)
            if (fault_matches(&S.faults[i], symbol, "nvmlDeviceGetHandleByIndex", (int)index)) {
                rc = S.faults[i].code;
                break;
            }
    }
    if (rc == NVML_SUCCESS) *device = &DEVICES[index];
    return end(rc);
}
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *d) { return handle_by_index("nvmlDeviceGetHandleByIndex", i, d); }
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) { return handle_by_index("nvmlDeviceGetHandleByIndex_v2", i, d); }

#define DEVICE_CALL(symbol, base, device) \
    int gpu = -1;                         \
    nvmlReturn_t rc = begin(symbol, base, 1, device, &gpu); \
    if (rc != NVML_SUCCESS) return end(rc); \
    struct gpu *g = &S.gpus[gpu];

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    DEVICE_CALL("nvmlDeviceGetIndex", "nvmlDeviceGetIndex", device)
    (void)g;
    if (!index) return end(NVML_ERROR_INVALID_ARGUMENT);
    *index = (unsigned int)gpu;
    return end(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    DEVICE_CALL("nvmlDeviceGetName", "nvmlDeviceGetName", device)
    return end(copy_string(name, length, g->name));
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    DEVICE_CALL("nvmlDeviceGetUUID", "nvmlDeviceGetUUID", device)
    return end(copy_string(uuid, length, g->uuid));
}

/* v1 folds the reserved memory into "used", as drivers since R510 do. */
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    DEVICE_CALL("nvmlDeviceGetMemoryInfo", "nvmlDeviceGetMemoryInfo", device)
    if (!memory) return end(NVML_ERROR_INVALID_ARGUMENT);
    memory->total = g->total;
    memory->free = g->free;
    memory->used = g->used + g->reserved;
    return end(NVML_SUCCESS);
}

#ifndef NO_MEMORY_INFO_V2
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    DEVICE_CALL("nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetMemoryInfo", device)
    if (!memory) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (memory->version != NVML_MEMORY_V2_VERSION) return end(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    memory->total = g->total;
    memory->reserved = g->reserved;
    memory->free = g->free;
    memory->used = g->used;
    return end(NVML_SUCCESS);
}
#endif

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    DEVICE_CALL("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetUtilizationRates", device)
    if (!utilization) return end(NVML_ERROR_INVALID_ARGUMENT);
    utilization->gpu = g->util_gpu;
    utilization->memory = g->util_mem;
    return end(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp) {
    DEVICE_CALL("nvmlDeviceGetTemperature", "nvmlDeviceGetTemperature", device)
    if (!temp || sensor != 0) return end(NVML_ERROR_INVALID_ARGUMENT);
    *temp = g->temperature;
    return end(NVML_SUCCESS);
}

static nvmlReturn_t unsigned_field(const char *symbol, nvmlDevice_t device, unsigned int *out, int which) {
    DEVICE_CALL(symbol, symbol, device)
    if (!out) return end(NVML_ERROR_INVALID_ARGUMENT);
    *out = which == 0 ? g->power_mw : g->power_limit_mw;
    return end(NVML_SUCCESS);
}
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) { return unsigned_field("nvmlDeviceGetPowerUsage", d, mw, 0); }
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) { return unsigned_field("nvmlDeviceGetEnforcedPowerLimit", d, mw, 1); }
nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *mw) { return unsigned_field("nvmlDeviceGetPowerManagementLimit", d, mw, 1); }

/* The size protocol: too small a buffer (or none) gets INSUFFICIENT_SIZE and the count needed. */
static nvmlReturn_t processes(const char *symbol, const char *base, int graphics, nvmlDevice_t device,
                              unsigned int *count, nvmlProcessInfo_t *infos) {
    DEVICE_CALL(symbol, base, device)
    (void)g;
    if (!count) return end(NVML_ERROR_INVALID_ARGUMENT);
    unsigned int n = 0;
    for (int i = 0; i < S.proc_count; i++)
        if (S.procs[i].gpu == gpu && S.procs[i].graphics == graphics) n++;
    if (n > *count) {
        *count = n;
        return end(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    if (n > 0 && !infos) return end(NVML_ERROR_INVALID_ARGUMENT);
    unsigned int k = 0;
    for (int i = 0; i < S.proc_count; i++) {
        const struct proc *p = &S.procs[i];
        if (p->gpu != gpu || p->graphics != graphics) continue;
        infos[k].pid = p->pid;
        infos[k].usedGpuMemory = p->used;
        infos[k].gpuInstanceId = 0xFFFFFFFFu; /* not a MIG instance */
        infos[k].computeInstanceId = 0xFFFFFFFFu;
        k++;
    }
    *count = n;
    return end(NVML_SUCCESS);
}

#define PROCESS_SYMBOL(name, base, graphics) \
    nvmlReturn_t name(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *infos) { \
        return processes(#name, base, graphics, d, count, infos); \
    }
PROCESS_SYMBOL(nvmlDeviceGetComputeRunningProcesses_v2, "nvmlDeviceGetComputeRunningProcesses", 0)
PROCESS_SYMBOL(nvmlDeviceGetGraphicsRunningProcesses_v2, "nvmlDeviceGetGraphicsRunningProcesses", 1)
#ifndef NO_PROCESSES_V3
PROCESS_SYMBOL(nvmlDeviceGetComputeRunningProcesses_v3, "nvmlDeviceGetComputeRunningProcesses", 0)
PROCESS_SYMBOL(nvmlDeviceGetGraphicsRunningProcesses_v3, "nvmlDeviceGetGraphicsRunningProcesses", 1)
#endif
