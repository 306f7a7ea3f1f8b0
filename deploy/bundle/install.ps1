<#
.SYNOPSIS
  Offline installer of the SOC agent on Windows from this bundle (built by `soc package`).

.DESCRIPTION
  Checks every file of the bundle against SHA256SUMS, then hands over to
  deploy\windows\install-agent.ps1 with the bundle's wheelhouse\windows (win_amd64 wheels,
  pywin32 included): a private venv, pip --no-index, enrolment and the SocAgent service.
  Run in an elevated PowerShell.

.EXAMPLE
  .\install.ps1 -Collector https://soc-collector.tinh.vn:8443 -Token (Read-Host -AsSecureString)
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string]$Collector,
    [Parameter(Mandatory = $true)][securestring]$Token,
    [string]$Python = "py"
)
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path

Write-Host "Checking the bundle against SHA256SUMS"
$bad = 0
foreach ($line in Get-Content (Join-Path $here "SHA256SUMS")) {
    if (-not $line.Trim()) { continue }
    $expected, $relative = $line -split "  ", 2
    $path = Join-Path $here ($relative -replace "/", "\")
    if (-not (Test-Path -LiteralPath $path)) { Write-Warning "missing: $relative"; $bad++; continue }
    $actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $path).Hash.ToLowerInvariant()
    if ($actual -ne $expected) { Write-Warning "altered: $relative"; $bad++ }
}
if ($bad -gt 0) { throw "The bundle is damaged or altered ($bad files); copy it again." }

& (Join-Path $here "deploy\windows\install-agent.ps1") `
    -Wheelhouse (Join-Path $here "wheelhouse\windows") -Collector $Collector -Token $Token -Python $Python
