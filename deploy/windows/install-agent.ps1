<#
.SYNOPSIS
  Install the SOC agent on a Windows PC or server from a local wheelhouse, enrol it and start the service.

.DESCRIPTION
  Offline by design: every package comes from -Wheelhouse (a folder or share holding soc_platform-*.whl
  and all its dependency wheels, pywin32 included), never from the Internet. Run in an elevated
  PowerShell. The enrolment token is passed to `soc agent enroll` and is not written to disk or logs.

.EXAMPLE
  .\install-agent.ps1 -Wheelhouse \\fileserver\soc\wheels -Collector https://soc-collector.tinh.vn:8443 -Token (Read-Host -AsSecureString)
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string]$Wheelhouse,
    [Parameter(Mandatory = $true)][string]$Collector,
    [Parameter(Mandatory = $true)][securestring]$Token,
    [string]$Python = "py",
    [string]$InstallDir = "$env:ProgramFiles\SOC\agent"
)

$ErrorActionPreference = "Stop"

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script in an elevated (Administrator) PowerShell."
}
if (-not (Test-Path $Wheelhouse)) { throw "Wheelhouse not found: $Wheelhouse" }
if ($Collector -notmatch '^https://') { throw "The collector URL must use https://" }

# 1. A private virtual environment, so the agent does not depend on (or disturb) other Python software.
if (-not (Test-Path "$InstallDir\Scripts\python.exe")) {
    New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
    & $Python -3 -m venv $InstallDir
    if ($LASTEXITCODE -ne 0) { throw "Creating the virtual environment failed (is Python 3.11+ installed?)" }
}
$venvPython = "$InstallDir\Scripts\python.exe"
$soc = "$InstallDir\Scripts\soc.exe"

# 2. Install from the wheelhouse only.
& $venvPython -m pip install --no-index --find-links $Wheelhouse --upgrade "soc-platform[windows]"
if ($LASTEXITCODE -ne 0) { throw "pip install from $Wheelhouse failed" }
# pywin32 needs its post-install step for the service host DLLs.
$postInstall = "$InstallDir\Scripts\pywin32_postinstall.py"
if (Test-Path $postInstall) { & $venvPython $postInstall -install -quiet | Out-Null }

# 3. Configuration and data live under ProgramData, readable by SYSTEM and Administrators only.
$dataDir = "$env:ProgramData\SOC"
New-Item -ItemType Directory -Force -Path $dataDir | Out-Null
icacls $dataDir /inheritance:r /grant:r "SYSTEM:(OI)(CI)F" "Administrators:(OI)(CI)F" | Out-Null
[Environment]::SetEnvironmentVariable("SOC_DATA_DIR", $dataDir, "Machine")
$env:SOC_DATA_DIR = $dataDir

# 4. Enrol (the token is decrypted only for this call) and install the service.
$plainToken = [Runtime.InteropServices.Marshal]::PtrToStringBSTR(
    [Runtime.InteropServices.Marshal]::SecureStringToBSTR($Token))
try {
    & $soc agent enroll --collector $Collector --token $plainToken
    if ($LASTEXITCODE -ne 0) { throw "Enrolment failed (exit code $LASTEXITCODE)" }
} finally {
    $plainToken = $null
}
& $soc agent install
if ($LASTEXITCODE -ne 0) { throw "Service installation failed (exit code $LASTEXITCODE)" }

Get-Service -Name SocAgent | Format-Table -AutoSize Name, Status, StartType
Write-Host "SOC agent installed. Status: `"$soc agent status`""
